/* Finished-job notifications (which jobs ended, what they say) and the theme toggle. */
import { afterEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { endedMessage, jobsThatEnded, usePreferencesStore } from '@/stores/preferences'
import { makeJob } from './job-samples'

describe('jobsThatEnded', () => {
  it('lists jobs that were active and are done or cancelled now', () => {
    const before = {
      '1': makeJob('1', 5, 10, { state: 'running' }),
      '2': makeJob('2', 5, 10, { state: 'paused' }),
      '3': makeJob('3', 10, 10, { state: 'done' }),
    }
    const after = {
      '1': makeJob('1', 10, 10, { state: 'done' }),
      '2': makeJob('2', 5, 10, { state: 'cancelled' }),
      '3': makeJob('3', 10, 10, { state: 'done' }),
      '4': makeJob('4', 10, 10, { state: 'done' }),
    }
    expect(jobsThatEnded(before, after).map((job) => job.id)).toEqual(['1', '2'])
    expect(jobsThatEnded(after, after)).toEqual([])
  })
})

describe('endedMessage', () => {
  it('names the job and says how it ended', () => {
    expect(endedMessage(makeJob('1', 7, 10, { failed: 3, state: 'done', name: 'Cats' }))).toEqual({
      title: 'Cats is done',
      body: '7 downloaded, 3 failed.',
    })
    expect(endedMessage(makeJob('2', 1200, 1200, { name: '' }))).toEqual({ title: 'Job 2 is done', body: '1,200 downloaded.' })
    expect(endedMessage(makeJob('3', 4, 10, { state: 'cancelled', name: 'Dogs' })).title).toBe('Dogs was cancelled')
  })
})

describe('theme', () => {
  afterEach(() => {
    localStorage.clear()
    delete document.documentElement.dataset.theme
  })
  it('follows the system by default and keeps a choice in this browser', async () => {
    setActivePinia(createPinia())
    const preferences = usePreferencesStore()
    expect(preferences.theme).toBe('system')
    expect(document.documentElement.dataset.theme).toBeUndefined()
    preferences.setTheme('dark')
    await nextTick()
    expect(document.documentElement.dataset.theme).toBe('dark')
    expect(localStorage.getItem('litchi.theme')).toBe('dark')

    setActivePinia(createPinia())
    expect(usePreferencesStore().theme).toBe('dark')
    usePreferencesStore().setTheme('system')
    await nextTick()
    expect(document.documentElement.dataset.theme).toBeUndefined()
    expect(localStorage.getItem('litchi.theme')).toBeNull()
  })
})
