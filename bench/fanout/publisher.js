// Fan-out benchmark publisher: makes one server publish events at a fixed
// offered rate, one step of bench/fanout/bench.py's sweep at a time, whatever
// the server answers (open loop: a slow server does not slow the offer down,
// so its backlog shows up as latency instead of as a lower rate).
//
//   node publisher.js '{"api":"http://127.0.0.1:PORT", "token":..., "url":"http://..."}'
//
// Then one JSON command per stdin line, {"step":3, "rate":100, "seconds":4},
// answered with one JSON line when every request of the step is answered: how
// many were sent and answered 201, the publishing window [start_us, end_us]
// (CLOCK_MONOTONIC), how far the sends ran behind their schedule, and the
// requests' own response times. It lives for the whole sweep, so its start-up
// and its keep-alive connections are not part of any step.
//
// Every event is one `POST /api/jobs` of one URL, named "fanout:STEP:T" with T
// the CLOCK_MONOTONIC microseconds (process.hrtime) just before the request
// is handed to Node's HTTP agent: the server's {"type":"job","event":"created"}
// for it is published after T, so receipt minus T bounds the latency from
// above (for Litchi it includes the HTTP request and the SQLite commit, which
// is how a real event is made; the Node reference server takes the same
// request and broadcasts at once). Requests go over up to CONNECTIONS
// keep-alive connections; when all are busy they wait in the agent, and that
// wait is part of the latency too.
'use strict'
const http = require('http')
const readline = require('readline')

const options = JSON.parse(process.argv[2])
const CONNECTIONS = 16
const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS })
const target = new URL('/api/jobs', options.api)
const headers = { 'Content-Type': 'application/json' }
if (options.token) headers.Authorization = `Bearer ${options.token}`

function nowUs () {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

function percentile (values, p) {
  if (values.length === 0) return null
  const sorted = Float64Array.from(values).sort()
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 100) / 100
}

// One step: `rate` events/s for `seconds`; calls done(result) when all are answered.
function runStep ({ step, rate, seconds }, done) {
  const total = Math.max(1, Math.round(rate * seconds))
  const startUs = nowUs()
  let endUs = startUs
  let sent = 0
  let answered = 0
  let created = 0
  const lateMs = []
  const responseMs = []
  const errors = new Map()
  const fail = (what) => errors.set(what, (errors.get(what) || 0) + 1)

  function finish () {
    if (++answered !== total) return
    clearTimeout(giveUp)
    done({
      step,
      sent,
      created,
      errors: Object.fromEntries(errors),
      start_us: startUs,
      end_us: endUs,
      late_p99_ms: percentile(lateMs, 0.99),
      late_max_ms: percentile(lateMs, 1),
      response_p50_ms: percentile(responseMs, 0.5),
      response_p99_ms: percentile(responseMs, 0.99)
    })
  }

  function send (k) {
    const t = nowUs()
    lateMs.push((t - (startUs + k * 1e6 / rate)) / 1e3)
    endUs = t
    const body = JSON.stringify({ urls: [`${options.url}?k=${step}-${k}`], name: `fanout:${step}:${Math.round(t)}` })
    const request = http.request(target, {
      method: 'POST', agent, headers: { ...headers, 'Content-Length': Buffer.byteLength(body) }
    }, (response) => {
      response.resume()
      response.on('end', () => {
        responseMs.push((nowUs() - t) / 1e3)
        if (response.statusCode === 201) created++
        else fail(response.statusCode)
        finish()
      })
    })
    request.on('error', (error) => { fail(error.code || error.message); finish() })
    request.end(body)
  }

  // Event k is due at start + k / rate: each turn sends every event now due.
  function tick () {
    const due = Math.min(total, Math.floor((nowUs() - startUs) * rate / 1e6) + 1)
    while (sent < due) send(sent++)
    if (sent < total) setTimeout(tick, 1)
  }
  // A server that stops answering must not hang the sweep.
  const giveUp = setTimeout(() => {
    errors.set('unanswered', total - answered)
    answered = total - 1
    finish()
  }, (seconds + 30) * 1000)
  tick()
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => runStep(JSON.parse(line), (result) => process.stdout.write(JSON.stringify(result) + '\n')))
lines.on('close', () => { agent.destroy(); process.exit(0) })
