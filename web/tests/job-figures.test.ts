/*
 * What the job page and card derive from a job: a cancelled job never reads
 * 100 %, rate and ETA are the server's (no second estimator), a finished job's
 * duration and averages, "done with N failed", and the tab title.
 */
import { describe, expect, it } from 'vitest'
import type { Job } from '@/api/protocol'
import { finishedFigures, leftCount, liveFigures, outcomeOf, outcomeText, shownPercent, tabTitle } from '@/components/job-figures'
import { makeJob } from './job-samples'

function cancelledJob(done: number, failed: number, cancelled: number): Job {
  const job = makeJob('3', done, done + failed + cancelled, { failed, state: 'cancelled' })
  return { ...job, counts: { ...job.counts, queued: 0, cancelled } }
}

describe('shownPercent', () => {
  it('is what was processed for a cancelled job, never 100 %', () => {
    // The job: 5,179 done + 52 failed of 20,000, the rest cancelled.
    expect(shownPercent(cancelledJob(5179, 52, 20000 - 5231))).toBe(26)
    expect(shownPercent(cancelledJob(9999, 0, 1))).toBe(99)
  })
  it('is the finished share otherwise', () => {
    expect(shownPercent(makeJob('1', 1234, 5000))).toBe(24)
    expect(shownPercent(makeJob('1', 5000, 5000))).toBe(100)
    expect(shownPercent(makeJob('1', 4990, 5000, { failed: 10 }))).toBe(100)
  })
  it('lets a cancelled job with nothing cancelled read its real share', () => {
    expect(shownPercent(cancelledJob(10, 0, 0))).toBe(100)
  })
})

describe('counts', () => {
  it('done + failed + cancelled + left = total', () => {
    const job = cancelledJob(5179, 52, 14769)
    expect(leftCount(job)).toBe(0)
    expect(job.counts.done + job.counts.failed + job.counts.cancelled + leftCount(job)).toBe(job.counts.total)
  })
})

describe('liveFigures', () => {
  it('shows the server rate and ETA of a running job, and bytes/s from the average image', () => {
    const job = makeJob('1', 100, 1000, { state: 'running', rate: 20, eta: 45, bytes: 100 * 50_000 })
    expect(liveFigures(job)).toEqual({ itemsPerSecond: 20, bytesPerSecond: 1_000_000, etaSeconds: 45 })
  })
  it('has no rate, speed or ETA unless running', () => {
    for (const state of ['paused', 'queued', 'done', 'cancelled'] as const) {
      expect(liveFigures(makeJob('1', 10, 100, { state, rate: 5, eta: 18 }))).toEqual({
        itemsPerSecond: null,
        bytesPerSecond: null,
        etaSeconds: null,
      })
    }
  })
  it('shows no ETA while the rate is 0 (just resumed, nothing finished yet)', () => {
    expect(liveFigures(makeJob('1', 0, 100, { state: 'running', rate: 0, eta: null })).etaSeconds).toBeNull()
  })
})

describe('finishedFigures', () => {
  it('is the duration from created to finished and the averages over it', () => {
    const job = makeJob('1', 90, 100, { failed: 10, bytes: 9_000_000, created: '2025-01-01T10:00:00.000Z' })
    expect(finishedFigures(job, '2025-01-01T10:00:50.000Z')).toEqual({
      durationSeconds: 50,
      itemsPerSecond: 2,
      bytesPerSecond: 180_000,
    })
  })
  it('is unknown without a finish time or with a bad one', () => {
    const job = makeJob('1', 1, 1, { created: '2025-01-01T10:00:00.000Z' })
    expect(finishedFigures(job, null)).toBeNull()
    expect(finishedFigures(job, 'yesterday')).toBeNull()
    expect(finishedFigures(job, '2024-12-31T10:00:00.000Z')).toBeNull()
  })
})

describe('outcome', () => {
  it('says "done with N failed" instead of a plain done', () => {
    const job = makeJob('1', 70, 100, { failed: 30, state: 'done' })
    expect(outcomeOf(job)).toBe('done-with-failures')
    expect(outcomeText(job)).toBe('done with 30 failed')
    expect(outcomeOf(makeJob('1', 100, 100))).toBe('done')
    expect(outcomeOf(cancelledJob(1, 0, 9))).toBe('cancelled')
  })
})

describe('tabTitle', () => {
  it('names the job with its percent, and only the page elsewhere', () => {
    expect(tabTitle(null, makeJob('7', 42, 100, { name: 'Cats' }))).toBe('(42%) Cats · Litchi')
    expect(tabTitle(null, makeJob('7', 42, 100, { name: '' }))).toBe('(42%) Job 7 · Litchi')
    expect(tabTitle('Settings', null)).toBe('Settings · Litchi')
    expect(tabTitle(null, null)).toBe('Litchi')
  })
})
