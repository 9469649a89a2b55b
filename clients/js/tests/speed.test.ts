/*
 * The speed estimator with a clock the test steps by hand: nothing is
 * measured inside RATE_WINDOW_MS, a rate is change over elapsed time, later
 * ones are smoothed, the server's rate and ETA win over ours, a job that is
 * not running shows no rate, and removed jobs lose their speed.
 */
import { describe, expect, it } from 'vitest'
import { noSpeed, RATE_SMOOTHING, RATE_WINDOW_MS, SpeedEstimator, type JobSpeed } from '../src/live/speed.js'
import { makeJob } from '../src/testing.js'

function steppedClock(start = 1_000_000) {
  let now = start
  return {
    now: () => now,
    advance: (ms: number) => (now += ms),
  }
}

describe('SpeedEstimator.measure', () => {
  it('starts from the server’s rate and ETA, then measures over the window', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    const first = estimator.measure(makeJob('1', 10, 100, { rate: 0, eta: 42, bytes: 10_000 }), undefined)
    expect(first).toEqual({ itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: 42 })

    // Inside the window nothing is measured: the caller keeps what it shows.
    clock.advance(RATE_WINDOW_MS - 1)
    expect(estimator.measure(makeJob('1', 15, 100, { bytes: 15_000 }), first!)).toBeNull()

    // 2 s after the sample: 20 items and 40 kB more → 10 items/s, 20 kB/s, the first time unsmoothed.
    clock.advance(1_001)
    const second = estimator.measure(makeJob('1', 30, 100, { bytes: 50_000 }), undefined)!
    expect(second.itemsPerSecond).toBeCloseTo(10)
    expect(second.bytesPerSecond).toBeCloseTo(20_000)
    // 70 left at 10 items/s.
    expect(second.etaSeconds).toBeCloseTo(7)
  })

  it('smooths later measurements toward the new rate by RATE_SMOOTHING', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    estimator.measure(makeJob('1', 0, 1000, { bytes: 0 }), undefined)
    clock.advance(1_000)
    const steady = estimator.measure(makeJob('1', 10, 1000, { bytes: 10_000 }), undefined)!
    expect(steady.itemsPerSecond).toBeCloseTo(10)

    // The next second 30 items finish: shown rate moves 30% of the way from 10 to 30.
    clock.advance(1_000)
    const faster = estimator.measure(makeJob('1', 40, 1000, { bytes: 40_000 }), steady)!
    expect(faster.itemsPerSecond).toBeCloseTo(10 + RATE_SMOOTHING * (30 - 10))
    expect(faster.bytesPerSecond).toBeCloseTo(10_000 + RATE_SMOOTHING * (30_000 - 10_000))
    expect(faster.etaSeconds).toBeCloseTo(960 / faster.itemsPerSecond)
  })

  it('prefers the server’s rate and ETA when it sends them', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    estimator.measure(makeJob('1', 0), undefined)
    clock.advance(2_000)
    const withRate = estimator.measure(makeJob('1', 10, 100, { rate: 4 }), undefined)!
    expect(withRate.itemsPerSecond).toBe(4)
    expect(withRate.etaSeconds).toBeCloseTo(90 / 4)
    clock.advance(2_000)
    const withEta = estimator.measure(makeJob('1', 20, 100, { rate: 4, eta: 3 }), withRate)!
    expect(withEta.etaSeconds).toBe(3)
  })

  it('never shows a negative rate when counts or bytes read lower', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    estimator.measure(makeJob('1', 50, 100, { bytes: 9_000 }), undefined)
    clock.advance(1_000)
    const speed = estimator.measure(makeJob('1', 40, 100, { bytes: 1_000 }), undefined)!
    expect(speed.itemsPerSecond).toBe(0)
    expect(speed.bytesPerSecond).toBe(0)
    expect(speed.etaSeconds).toBeNull()
  })

  it('shows no rate for a job that is not running, 0 s left once nothing is left, and samples afresh', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    estimator.measure(makeJob('1', 0), undefined)
    clock.advance(5_000)
    expect(estimator.measure(makeJob('1', 40, 100, { state: 'paused' }), undefined)).toEqual({
      itemsPerSecond: 0,
      bytesPerSecond: 0,
      etaSeconds: null,
    })
    expect(estimator.measure(makeJob('1', 100, 100), undefined)).toEqual({ itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: 0 })

    // Running again: the paused time is not counted; the first message takes a new sample.
    const shown: JobSpeed = { itemsPerSecond: 1, bytesPerSecond: 2, etaSeconds: 3 }
    expect(estimator.measure(makeJob('1', 40, 100), shown)).toBe(shown)
    clock.advance(1_000)
    expect(estimator.measure(makeJob('1', 45, 100), undefined)!.itemsPerSecond).toBeCloseTo(5)
  })
})

describe('SpeedEstimator.update', () => {
  it('measures touched jobs once per call with one reading of the clock', () => {
    let reads = 0
    let now = 0
    const estimator = new SpeedEstimator(() => (reads++, now))
    const jobs = { a: makeJob('a', 0), b: makeJob('b', 0) }
    const first = estimator.update({}, jobs, ['a', 'b', 'a'])!
    expect(Object.keys(first).sort()).toEqual(['a', 'b'])
    expect(reads).toBe(1)

    now = 500
    expect(estimator.update(first, { a: makeJob('a', 3), b: makeJob('b', 3) }, ['a', 'b'])).toBeNull()
    now = 1_000
    const second = estimator.update(first, { a: makeJob('a', 5), b: makeJob('b', 0) }, ['a'])!
    // 5 items/s measured, smoothed from the 0 the first sighting showed.
    expect(second.a.itemsPerSecond).toBeCloseTo(RATE_SMOOTHING * 5)
    expect(second.b).toBe(first.b)
    expect(first.a.itemsPerSecond).toBe(0) // the previous map is not edited
  })

  it('drops the speed of jobs that are gone, touched or not', () => {
    const clock = steppedClock()
    const estimator = new SpeedEstimator(clock.now)
    const c = makeJob('c', 0)
    const speeds = estimator.update({}, { a: makeJob('a', 0), b: makeJob('b', 0), c }, ['a', 'b', 'c'])!
    // 'a' deleted by an event (touched), 'b' left out of a snapshot (not touched).
    const after = estimator.update(speeds, { c }, ['a'])!
    expect(Object.keys(after)).toEqual(['c'])
    // A deleted job that comes back starts a new sample rather than measuring across the gap.
    clock.advance(10_000)
    const back = estimator.update(after, { a: makeJob('a', 50), c }, ['a'])!
    expect(back.a).toEqual({ itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: null })
  })

  it('gives a blank speed for jobs never measured', () => {
    expect(noSpeed()).toEqual({ itemsPerSecond: 0, bytesPerSecond: 0, etaSeconds: null })
    expect(noSpeed()).not.toBe(noSpeed())
  })
})
