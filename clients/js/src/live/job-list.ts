/*
 * Read-only views of the job map that more than one page shows: the order of
 * the job list and the overall percent in the tab title. Pure, so the rules
 * (ties, empty jobs) are tested without LiveJobs.
 */
import { finishedCount, type Job } from '../protocol.js'

/** Newest first; ids break ties (numeric ids compare as numbers, so 10 after 9). */
export function newestFirst(a: Job, b: Job): number {
  return b.created.localeCompare(a.created) || b.id.localeCompare(a.id, undefined, { numeric: true })
}

/**
 * Percent finished over the given jobs together (0–100), rounded down so 100
 * means all. Weighted by items, not by job: one big job moves it more than a
 * small one. Jobs with no items count as finished only when all are done.
 */
export function percentOf(list: Job[]): number {
  let total = 0
  let finished = 0
  for (const entry of list) {
    total += entry.counts.total
    finished += finishedCount(entry.counts)
  }
  if (total === 0) return list.length > 0 && list.every((j) => j.state === 'done') ? 100 : 0
  return Math.min(100, Math.floor((finished * 100) / total))
}
