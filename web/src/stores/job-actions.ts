/*
 * useJobActionsStore: what a user does to jobs (pause, resume, cancel, delete,
 * rename), one job or several at once, from the job page or the Jobs list.
 * Each answer goes into the live store at once, so the screen does not wait
 * for the progress event; `busy` holds the ids with a request in flight.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { deleteJob, jobAction } from '@/api/http'
import { renameJob } from '@/api/job-requests'
import { useLiveStore } from './live'

export type StateAction = 'pause' | 'resume' | 'cancel'

export interface BulkResult {
  done: number
  failed: { id: string; message: string }[]
}

export const useJobActionsStore = defineStore('job-actions', () => {
  const live = useLiveStore()
  const busy = ref<Record<string, string>>({})

  function mark(id: string, action: string | null): void {
    const next = { ...busy.value }
    if (action) next[id] = action
    else delete next[id]
    busy.value = next
  }

  async function changeState(id: string, action: StateAction): Promise<void> {
    mark(id, action)
    try {
      const updated = await jobAction(id, action)
      if (updated) live.upsertJob(updated)
    } finally {
      mark(id, null)
    }
  }

  async function remove(id: string): Promise<void> {
    mark(id, 'delete')
    try {
      await deleteJob(id)
      live.removeJob(id)
    } finally {
      mark(id, null)
    }
  }

  async function rename(id: string, name: string): Promise<void> {
    mark(id, 'rename')
    try {
      live.upsertJob(await renameJob(id, name))
    } finally {
      mark(id, null)
    }
  }

  /** The same action on several jobs, one after another; every job is tried, failures are listed. */
  async function bulk(ids: readonly string[], action: StateAction | 'delete'): Promise<BulkResult> {
    const result: BulkResult = { done: 0, failed: [] }
    for (const id of ids) {
      try {
        if (action === 'delete') await remove(id)
        else await changeState(id, action)
        result.done++
      } catch (cause) {
        result.failed.push({ id, message: cause instanceof Error ? cause.message : String(cause) })
      }
    }
    return result
  }

  return { busy, changeState, remove, rename, bulk }
})
