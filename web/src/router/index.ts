/*
 * The app's routes (external browser tests drive these paths): /login, /jobs,
 * /jobs/new, /jobs/:id, /settings; anything else is the Not Found page.
 * Everything but /login needs a session.
 */
import { createRouter, createWebHistory, type Router } from 'vue-router'
import { useSessionStore } from '@/stores/session'
import JobsView from '@/views/JobsView.vue'
import JobView from '@/views/JobView.vue'
import LoginView from '@/views/LoginView.vue'
import NewJobView from '@/views/NewJobView.vue'
import NotFoundView from '@/views/NotFoundView.vue'
import SettingsView from '@/views/SettingsView.vue'

export function createAppRouter(): Router {
  const router = createRouter({
    history: createWebHistory(import.meta.env.BASE_URL),
    routes: [
      { path: '/', redirect: '/jobs' },
      { path: '/login', name: 'login', component: LoginView, meta: { public: true, title: 'Sign in' } },
      { path: '/jobs', name: 'jobs', component: JobsView, meta: { title: 'Jobs' } },
      { path: '/jobs/new', name: 'new-job', component: NewJobView, meta: { title: 'New job' } },
      { path: '/jobs/:id', name: 'job', component: JobView, props: true, meta: { title: 'Job' } },
      { path: '/settings', name: 'settings', component: SettingsView, meta: { title: 'Settings' } },
      { path: '/:rest(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'Not found' } },
    ],
  })

  router.beforeEach((to) => {
    const session = useSessionStore()
    if (to.meta.public) {
      const hasLinkToken = /(^|[#&])token=/.test(to.hash)
      if (to.name === 'login' && session.signedIn && !hasLinkToken) {
        const next = typeof to.query.next === 'string' && to.query.next.startsWith('/') ? to.query.next : '/jobs'
        return next
      }
      return true
    }
    if (!session.signedIn) return { path: '/login', query: to.fullPath !== '/jobs' ? { next: to.fullPath } : {} }
    return true
  })

  return router
}
