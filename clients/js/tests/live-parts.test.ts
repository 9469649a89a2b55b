/*
 * The small pure parts beside the live store: item feeds (one subscribe per
 * job however many views follow it) and the job list's order and overall
 * percent.
 */
import { describe, expect, it } from 'vitest'
import type { Item } from '../src/protocol.js'
import { ItemFeeds, type ItemFeed } from '../src/live/item-feeds.js'
import { newestFirst, percentOf } from '../src/live/job-list.js'
import { makeJob } from '../src/testing.js'

function feed(log: string[], name: string): ItemFeed {
  return { item: (item: Item) => log.push(`${name} ${item.id}`), reset: () => log.push(`${name} reset`) }
}

describe('ItemFeeds', () => {
  it('says subscribe on a job’s first feed and unsubscribe on its last', () => {
    const feeds = new ItemFeeds()
    const log: string[] = []
    const a = feed(log, 'a')
    const b = feed(log, 'b')
    expect(feeds.add('1', a)).toBe(true)
    expect(feeds.add('1', b)).toBe(false)
    expect(feeds.add('2', a)).toBe(true)
    expect([...feeds.jobIds()]).toEqual(['1', '2'])
    expect(feeds.remove('1', a)).toBe(false)
    expect(feeds.remove('1', b)).toBe(true)
    // A second unsubscribe of the same feed must not unsubscribe again.
    expect(feeds.remove('1', b)).toBe(false)
    expect([...feeds.jobIds()]).toEqual(['2'])
  })

  it('passes items and resets only to the feeds of that job', () => {
    const feeds = new ItemFeeds()
    const log: string[] = []
    feeds.add('1', feed(log, 'a'))
    feeds.add('1', feed(log, 'b'))
    feeds.add('2', feed(log, 'c'))
    feeds.item('1', { id: 'x', url: '', state: 'done', attempts: 1 })
    feeds.reset('2')
    feeds.item('3', { id: 'y', url: '', state: 'done', attempts: 1 })
    expect(log).toEqual(['a x', 'b x', 'c reset'])
  })
})

describe('job list', () => {
  it('orders newest first, numeric ids breaking ties as numbers', () => {
    const same = '2025-01-01T00:00:00Z'
    const list = [
      makeJob('9', 0, 100, { created: same }),
      makeJob('old', 0, 100, { created: '2024-12-31T00:00:00Z' }),
      makeJob('10', 0, 100, { created: same }),
      makeJob('new', 0, 100, { created: '2025-02-01T00:00:00Z' }),
    ]
    expect(list.sort(newestFirst).map((j) => j.id)).toEqual(['new', '10', '9', 'old'])
  })

  it('weights the overall percent by items and rounds down', () => {
    expect(percentOf([makeJob('a', 100, 100), makeJob('b', 0, 200)])).toBe(33)
    expect(percentOf([makeJob('a', 299, 300)])).toBe(99)
    expect(percentOf([makeJob('a', 5, 10, { failed: 5 })])).toBe(100)
  })

  it('treats jobs without items as finished only when all are done', () => {
    expect(percentOf([])).toBe(0)
    expect(percentOf([makeJob('a', 0, 0)])).toBe(100)
    expect(percentOf([makeJob('a', 0, 0), makeJob('b', 0, 0, { state: 'queued' })])).toBe(0)
  })
})
