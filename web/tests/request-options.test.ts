/*
 * The new-job form's request options as POST /api/jobs fields: only what was
 * set, numbers as numbers, and the server's header rules applied before
 * sending (transfer-owned headers, names that are not tokens, line breaks).
 */
import { describe, expect, it } from 'vitest'
import {
  emptyRequestOptions,
  headerProblem,
  isCredentialHeader,
  requestFields,
  type RequestOptionsForm,
} from '@/api/request-options'

const form = (patch: Partial<RequestOptionsForm>): RequestOptionsForm => ({ ...emptyRequestOptions(), ...patch })

describe('requestFields', () => {
  it('sends nothing for an untouched form', () => {
    expect(requestFields(emptyRequestOptions())).toEqual({ fields: {} })
  })

  it('sends what was set, numbers as numbers', () => {
    const result = requestFields(
      form({
        userAgent: ' bot/1 ',
        referer: 'https://example.com/',
        headers: 'Authorization: Bearer x\r\n\nX-A:  1 ',
        retries: '0',
        timeout: '2.5',
        perHost: '2',
        maxBytes: '1000',
        webhookUrl: 'https://example.com/hook',
        webhookSecret: 's',
        webhookEvents: ['failed'],
      }),
    )
    expect(result).toEqual({
      fields: {
        user_agent: 'bot/1',
        referer: 'https://example.com/',
        headers: { Authorization: 'Bearer x', 'X-A': '1' },
        retries: 0,
        timeout: 2.5,
        per_host: 2,
        max_bytes: 1000,
        webhook: { url: 'https://example.com/hook', secret: 's', events: ['failed'] },
      },
    })
  })

  it('refuses what the server refuses', () => {
    for (const patch of [
      { headers: 'Host: evil' },
      { headers: 'proxy-authorization: x' },
      { headers: 'Bad Name: x' },
      { headers: 'NoColon' },
      { retries: '-1' },
      { perHost: '0' },
      { timeout: 'soon' },
      { webhookUrl: 'ftp://x/y' },
      { webhookUrl: 'https://x/y', webhookEvents: [] },
    ] as Partial<RequestOptionsForm>[]) {
      expect(requestFields(form(patch)), JSON.stringify(patch)).toHaveProperty('error')
    }
  })
})

describe('header rules', () => {
  it('matches the server on names and values', () => {
    expect(headerProblem('X-Custom', 'a b')).toBeNull()
    expect(headerProblem('Content-Length', '1')).not.toBeNull()
    expect(headerProblem('Cookie2', 'a')).not.toBeNull()
    expect(headerProblem('X-A', 'a\nHost: b')).not.toBeNull()
    expect(headerProblem('X-A', 'tab\tok')).toBeNull()
  })

  it('knows credential headers', () => {
    expect(['Authorization', 'cookie', 'X-Auth-Token', 'x-api-key'].every(isCredentialHeader)).toBe(true)
    expect(['Accept', 'X-Token-Count'].some(isCredentialHeader)).toBe(false)
  })
})
