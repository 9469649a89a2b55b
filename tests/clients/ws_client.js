// A progress client built on the `ws` npm package (not our code), for
// tests/integration/test_live_clients.py. Connects with the given URL (and
// subprotocols), records every message until job JOB is done, then closes and
// prints {"code","protocol","messages"} as one JSON line on stdout. An HTTP
// refusal prints {"status"}.
//   node ws_client.js URL PROTOCOLS(comma list or "") JOB TIMEOUT_MS
'use strict'
const WebSocket = require('ws')

const [, , url, protocols, jobId, timeoutMs] = process.argv
const ws = protocols ? new WebSocket(url, protocols.split(',')) : new WebSocket(url)
const messages = []
const timer = setTimeout(() => {
  process.stderr.write('timeout\n')
  process.exit(3)
}, Number(timeoutMs || 60000))

const isDone = (job) => String(job.id) === jobId && job.state === 'done'
ws.on('open', () => process.stderr.write('open\n'))
ws.on('message', (data) => {
  const message = JSON.parse(data.toString())
  messages.push(message)
  const done = ((message.type === 'progress' || message.type === 'job') && isDone(message.job)) ||
    ((message.type === 'hello' || message.type === 'snapshot') && message.jobs.some(isDone))
  if (done) ws.close(1000)
})
ws.on('close', (code) => {
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({ code, protocol: ws.protocol, messages }) + '\n')
  process.exit(0)
})
ws.on('unexpected-response', (request, response) => {
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({ status: response.statusCode }) + '\n')
  process.exit(0)
})
ws.on('error', (error) => process.stderr.write(`error ${error.message}\n`))
