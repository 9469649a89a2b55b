/*
 * App entry: Pinia, the router, and the one live connection, started here
 * (never by a component) as soon as a session exists and stopped at sign-out.
 */
import { createPinia } from 'pinia'
import { createApp, watch } from 'vue'
import App from './App.vue'
import { createAppRouter } from './router'
import { useLiveStore } from './stores/live'
import { useSessionStore } from './stores/session'
import './assets/main.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
const router = createAppRouter()
app.use(router)

const session = useSessionStore()
const live = useLiveStore()

watch(
  () => session.signedIn,
  (signedIn, wasSignedIn) => {
    if (signedIn) {
      live.start({
        token: () => session.token,
        onUnauthorized: () => session.expire(),
      })
      return
    }
    // Signed out (button, 401, another tab): forget this user's numbers.
    live.stop(true)
    if (wasSignedIn && router.currentRoute.value.name !== 'login') {
      void router.push({ path: '/login', query: { next: router.currentRoute.value.fullPath } })
    }
  },
  { immediate: true },
)

app.mount('#app')
