/*
 * usePreferencesStore: this browser's choices, kept in localStorage: the
 * theme (follow the OS, or light / dark, applied as data-theme on <html>) and
 * whether to show a browser notification when a job finishes (opt-in; asks
 * the browser's permission when turned on). The notifications themselves
 * follow the live store: a job seen active, then done or cancelled, makes one.
 */
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import type { Job } from '@/api/protocol'
import { useLiveStore } from './live'

export type Theme = 'system' | 'light' | 'dark'

const THEME_KEY = 'litchi.theme'
const NOTIFY_KEY = 'litchi.notify'

function read(key: string): string | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage.getItem(key)
  } catch {
    return null
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key)
    else localStorage.setItem(key, value)
  } catch {
    // Storage disabled: the choice lasts as long as the page.
  }
}

/** The jobs of `next` that were active in `previous` and have ended since. */
export function jobsThatEnded(previous: Readonly<Record<string, Job>>, next: Readonly<Record<string, Job>>): Job[] {
  const ended: Job[] = []
  for (const [id, job] of Object.entries(next)) {
    const before = previous[id]
    if (!before) continue
    const wasActive = before.state === 'queued' || before.state === 'running' || before.state === 'paused'
    if (wasActive && (job.state === 'done' || job.state === 'cancelled')) ended.push(job)
  }
  return ended
}

/** The notification's words for a job that ended. */
export function endedMessage(job: Job): { title: string; body: string } {
  const name = job.name || `Job ${job.id}`
  const count = (n: number) => n.toLocaleString('en-US')
  if (job.state === 'cancelled') return { title: `${name} was cancelled`, body: `${count(job.counts.done)} downloaded before it stopped.` }
  const failed = job.counts.failed > 0 ? `, ${count(job.counts.failed)} failed` : ''
  return { title: `${name} is done`, body: `${count(job.counts.done)} downloaded${failed}.` }
}

export const usePreferencesStore = defineStore('preferences', () => {
  const stored = read(THEME_KEY)
  const theme = ref<Theme>(stored === 'light' || stored === 'dark' ? stored : 'system')
  const notify = ref(read(NOTIFY_KEY) === '1')
  const permission = ref<NotificationPermission | 'unsupported'>(
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
  )

  watch(
    theme,
    (value) => {
      write(THEME_KEY, value === 'system' ? null : value)
      if (typeof document === 'undefined') return
      if (value === 'system') delete document.documentElement.dataset.theme
      else document.documentElement.dataset.theme = value
    },
    { immediate: true },
  )

  function setTheme(value: Theme): void {
    theme.value = value
  }

  /** Turns notifications on (asking the browser) or off; false when the browser refused. */
  async function setNotify(on: boolean): Promise<boolean> {
    if (!on) {
      notify.value = false
      write(NOTIFY_KEY, null)
      return true
    }
    if (typeof Notification === 'undefined') {
      permission.value = 'unsupported'
      return false
    }
    permission.value = Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission
    notify.value = permission.value === 'granted'
    write(NOTIFY_KEY, notify.value ? '1' : null)
    return notify.value
  }

  // One notification per job that ends while this page is open.
  const live = useLiveStore()
  watch(
    () => live.jobs,
    (next, previous) => {
      if (!notify.value || !previous || typeof Notification === 'undefined' || Notification.permission !== 'granted') return
      for (const job of jobsThatEnded(previous, next)) {
        const { title, body } = endedMessage(job)
        new Notification(title, { body, tag: `litchi-job-${job.id}` })
      }
    },
  )

  return { theme, notify, permission, setTheme, setNotify }
})
