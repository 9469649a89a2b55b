/* The job page's item tools: search, filters, sort, groups and the failed URLs as text. */
import { describe, expect, it } from 'vitest'
import type { Item } from '@/api/protocol'
import { emptyQuery, groupByReason, isFiltering, queryItems, urlsText } from '@/stores/item-query'

const items: Item[] = [
  { id: '1', url: 'https://b.example/Cat.png', state: 'done', bytes: 300, attempts: 1 },
  { id: '2', url: 'https://a.example/dog.png', state: 'done', bytes: 100, attempts: 1 },
  { id: '3', url: 'https://a.example/gone.png', state: 'failed', reason: 'http', http_status: 404, attempts: 1 },
  { id: '4', url: 'https://c.example/page.png', state: 'failed', reason: 'not_image', attempts: 1 },
  { id: '5', url: 'https://a.example/slow.png', state: 'failed', reason: 'timeout', attempts: 1 },
  { id: '6', url: 'https://a.example/gone2.png', state: 'failed', reason: 'http', http_status: 404, attempts: 1 },
]

const ids = (list: Item[]) => list.map((item) => item.id)

describe('queryItems', () => {
  it('matches every item with the empty query, in arrival order', () => {
    expect(ids(queryItems(items, emptyQuery()))).toEqual(['1', '2', '3', '4', '5', '6'])
    expect(isFiltering(emptyQuery())).toBe(false)
  })
  it('searches the URL, ignoring case', () => {
    expect(ids(queryItems(items, { ...emptyQuery(), search: ' CAT ' }))).toEqual(['1'])
    expect(ids(queryItems(items, { ...emptyQuery(), search: 'a.example' }))).toEqual(['2', '3', '5', '6'])
  })
  it('filters by state and by reason', () => {
    expect(ids(queryItems(items, { ...emptyQuery(), state: 'done' }))).toEqual(['1', '2'])
    expect(ids(queryItems(items, { ...emptyQuery(), state: 'failed', reason: 'http' }))).toEqual(['3', '6'])
  })
  it('sorts by URL and by size, without changing the input', () => {
    expect(ids(queryItems(items, { ...emptyQuery(), state: 'done', sort: 'url' }))).toEqual(['2', '1'])
    expect(ids(queryItems(items, { ...emptyQuery(), state: 'done', sort: 'smallest' }))).toEqual(['2', '1'])
    expect(ids(queryItems(items, { ...emptyQuery(), state: 'done', sort: 'largest' }))).toEqual(['1', '2'])
    expect(ids(items)).toEqual(['1', '2', '3', '4', '5', '6'])
  })
})

describe('groupByReason', () => {
  it('puts the largest group first; ties by reason', () => {
    const groups = groupByReason(items.filter((item) => item.state === 'failed'))
    expect(groups.map((group) => [group.reason, group.items.length])).toEqual([
      ['http', 2],
      ['not_image', 1],
      ['timeout', 1],
    ])
  })
})

describe('urlsText', () => {
  it('is one URL a line, ready for a new job', () => {
    expect(urlsText(items.slice(2, 4))).toBe('https://a.example/gone.png\nhttps://c.example/page.png\n')
    expect(urlsText([])).toBe('')
  })
})
