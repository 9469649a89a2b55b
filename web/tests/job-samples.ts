/* Jobs for the unit tests of what pages derive from them (no connection involved). */
import type { Job, JobState } from '@/api/protocol'

export function makeJob(
  id: string,
  done: number,
  total = 100,
  extra: Partial<Job> & { failed?: number; state?: JobState } = {},
): Job {
  const failed = extra.failed ?? 0
  const left = Math.max(0, total - done - failed)
  return {
    id,
    name: extra.name ?? `job ${id}`,
    state: extra.state ?? (left === 0 ? 'done' : 'running'),
    created: extra.created ?? '2025-01-01T00:00:00Z',
    counts: { total, queued: left, active: 0, done, failed, cancelled: 0 },
    bytes: extra.bytes ?? done * 1000,
    rate: extra.rate ?? 0,
    eta: extra.eta ?? null,
  }
}
