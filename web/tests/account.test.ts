/* Reading the token list: what Settings shows of each token, and what it drops. */
import { describe, expect, it } from 'vitest'
import { parseToken } from '@/api/account'

describe('parseToken', () => {
  it('keeps id, kind, name, times and which one is ours', () => {
    expect(
      parseToken({ id: 4, kind: 'api', name: 'backup', created: '2025-01-01T00:00:00Z', last_used: null, current: false }),
    ).toEqual({ id: '4', kind: 'api', name: 'backup', created: '2025-01-01T00:00:00Z', lastUsed: '', current: false })
    expect(parseToken({ id: '9', kind: 'session', created: 1735689600000, last_used: 1735689660000, current: true })).toEqual({
      id: '9',
      kind: 'session',
      name: '',
      created: '2025-01-01T00:00:00.000Z',
      lastUsed: '2025-01-01T00:01:00.000Z',
      current: true,
    })
  })
  it('reads epoch seconds as well as milliseconds', () => {
    expect(parseToken({ id: 1, created: 1735689600 })?.created).toBe('2025-01-01T00:00:00.000Z')
  })
  it('drops entries without an id', () => {
    expect(parseToken({ kind: 'api' })).toBeNull()
    expect(parseToken(null)).toBeNull()
    expect(parseToken('t')).toBeNull()
  })
})
