/*
 * Turns pasted text or a dropped .txt/.csv file into the URL list a new job
 * sends (POST /api/jobs {"urls"}), counting valid and invalid lines as the
 * user types. A line is valid when it holds an absolute http(s) URL without
 * a user name or password; in CSV input the first field that is one wins, so
 * exported spreadsheets work.
 *
 * The list rule is the server's and `litchi fetch`'s (src/jobs/url_list.hpp),
 * tested with the same cases (tests/cases/url-list.json): lines split at \n,
 * \r\n or \r and trimmed; blank lines and `#` comments skipped; a line equal
 * to an earlier one is a duplicate, dropped (not submitted) and counted;
 * `http://user:pw@host/` is refused like any unusable line.
 */

export interface UrlListSummary {
  urls: string[]
  /** Non-empty, non-comment lines that hold no usable URL. */
  invalid: number
  /** Line numbers (1-based) of the first few invalid lines, for a hint. */
  invalidLines: number[]
  /** Lines dropped because an earlier line was the same. */
  duplicates: number
}

const MAX_URL_LENGTH = 8192
const INVALID_LINE_SAMPLE = 5

export function normaliseUrl(candidate: string): string | null {
  const text = candidate.trim().replace(/^["']|["']$/g, '').trim()
  if (text.length === 0 || text.length > MAX_URL_LENGTH) return null
  if (!/^https?:\/\//i.test(text)) return null
  try {
    const url = new URL(text)
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname.length === 0) return null
    // Credentials in a URL are refused everywhere (the server says bad_url).
    if (url.username.length > 0 || url.password.length > 0 || /^[^/]*\/\/[^/?#]*@/.test(text)) return null
    // Keep what the user wrote (the server re-parses it); only trim quotes and spaces.
    return text
  } catch {
    return null
  }
}

function splitCsvFields(line: string): string[] {
  const fields: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"'
        i++
      } else if (ch === '"') quoted = false
      else field += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',' || ch === ';' || ch === '\t') {
      fields.push(field)
      field = ''
    } else field += ch
  }
  fields.push(field)
  return fields
}

/** Finds the URL on one line: the whole line, else the first CSV field that is one. */
export function urlFromLine(line: string): string | null {
  const whole = normaliseUrl(line)
  if (whole) return whole
  if (!/[,;\t]/.test(line)) return null
  for (const field of splitCsvFields(line)) {
    const url = normaliseUrl(field)
    if (url) return url
  }
  return null
}

export function summariseUrlList(text: string): UrlListSummary {
  const urls: string[] = []
  const seen = new Set<string>()
  const invalidLines: number[] = []
  let invalid = 0
  let duplicates = 0
  const lines = text.split(/\r\n|\n|\r/)
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index].trim()
    if (line.length === 0 || line.startsWith('#')) continue
    // Duplicates are judged on the line, valid or not, and never submitted.
    if (seen.has(line)) {
      duplicates++
      continue
    }
    seen.add(line)
    const url = urlFromLine(line)
    if (!url) {
      // A CSV header row ("url,name") is not an error worth flagging.
      if (index === 0 && /^[\w\s",;\t-]+$/.test(line) && /url/i.test(line)) continue
      invalid++
      if (invalidLines.length < INVALID_LINE_SAMPLE) invalidLines.push(index + 1)
      continue
    }
    urls.push(url)
  }
  return { urls, invalid, invalidLines, duplicates }
}
