/*
 * New job: counting valid URL lines in pasted text and .txt/.csv files. The
 * list rule's cases are shared with the C++ side (tests/cases/url-list.json,
 * read by tests/unit/jobs_url_list_test.cpp too).
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { normaliseUrl, summariseUrlList, urlFromLine } from '@/api/url-list'

interface SharedCase {
  name: string
  text: string
  lines: string[]
  refused: string[]
  duplicates: number
  comments: number
}

const shared = JSON.parse(
  // Vitest runs in web/ (npm test, ctest's web.unit).
  readFileSync(resolve(process.cwd(), '..', 'tests', 'cases', 'url-list.json'), 'utf8'),
) as { cases: SharedCase[] }

describe('the shared URL list cases', () => {
  it('has cases to run', () => {
    expect(shared.cases.length).toBeGreaterThanOrEqual(5)
  })
  for (const c of shared.cases) {
    it(c.name, () => {
      const summary = summariseUrlList(c.text)
      // What the server keeps and does not refuse is what the form submits.
      expect(summary.urls).toEqual(c.lines.filter((line) => !c.refused.includes(line)))
      expect(summary.invalid).toBe(c.refused.length)
      expect(summary.duplicates).toBe(c.duplicates)
    })
  }
})

describe('summariseUrlList', () => {
  it('counts valid, invalid and duplicate lines; skips blanks and comments', () => {
    const text = [
      'https://example.com/a.jpg',
      '',
      '# a comment',
      '  http://example.com/b.png  ',
      'ftp://example.com/c.gif',
      'not a url',
      'https://example.com/a.jpg',
      'https://',
    ].join('\r\n')
    const summary = summariseUrlList(text)
    expect(summary.urls).toEqual(['https://example.com/a.jpg', 'http://example.com/b.png'])
    expect(summary.invalid).toBe(3)
    expect(summary.invalidLines).toEqual([5, 6, 8])
    expect(normaliseUrl('http://user:pw@example.com/a.jpg')).toBeNull()
    expect(summary.duplicates).toBe(1)
  })

  it('reads CSV: header skipped, first URL field of each row, quoted fields', () => {
    const csv = 'name,url\ncat,https://img.example/cat.jpg\n"dog, big","https://img.example/dog.jpg"\nnothing here,42\n'
    const summary = summariseUrlList(csv)
    expect(summary.urls).toEqual(['https://img.example/cat.jpg', 'https://img.example/dog.jpg'])
    expect(summary.invalid).toBe(1)
  })

  it('handles empty input and a large paste quickly', () => {
    expect(summariseUrlList('')).toEqual({ urls: [], invalid: 0, invalidLines: [], duplicates: 0 })
    const big = Array.from({ length: 20_000 }, (_, i) => `https://example.com/${i}.jpg`).join('\n')
    const started = performance.now()
    expect(summariseUrlList(big).urls).toHaveLength(20_000)
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('only accepts absolute http(s) URLs with a host', () => {
    expect(normaliseUrl('HTTPS://Example.com/x')).toBe('HTTPS://Example.com/x')
    expect(normaliseUrl('javascript:alert(1)')).toBeNull()
    expect(normaliseUrl('//example.com/x.jpg')).toBeNull()
    expect(normaliseUrl('https://' + 'a'.repeat(9000))).toBeNull()
    expect(urlFromLine("'https://example.com/q.jpg'")).toBe('https://example.com/q.jpg')
  })
})
