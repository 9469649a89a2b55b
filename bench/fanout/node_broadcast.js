// The reference server for bench/fanout: a plain Node `ws` broadcast server
// (the package's own broadcast recipe: JSON.stringify once, client.send to
// every open client), to compare `litchi serve`'s fan-out with. It plays
// Litchi's part with the same requests and messages:
//   - every WebSocket gets a `hello` of Litchi's shape with one job;
//   - `POST /api/jobs` with Litchi's JSON body ({"urls": [...], "name": ...})
//     broadcasts {"type":"job","seq":N,"event":"created","job":{...}} with a
//     job object of Litchi's shape and size carrying that name, and answers
//     201 with the job (bench/fanout/publisher.js drives both servers so).
// It keeps no jobs, checks no token and writes nothing: it is the cost of the
// fan-out alone, where Litchi's events also pass its store and its hub.
// A client whose send buffer holds over 64 KiB is skipped for that message
// (the bounded-memory rule Litchi follows too: it resyncs such a reader); a
// skipped message never arrives, which the benchmark counts against latency.
//   node node_broadcast.js PORT
'use strict'
const http = require('http')
const path = require('path')
const WebSocket = require(path.join(__dirname, '../../tests/clients/node_modules/ws'))

const SEND_BUFFER_LIMIT = 64 * 1024
const EPOCH = '9f3c2a71d0b84e65-1'
let seq = Date.now() * 1000
let nextId = 2

function job (id, name, urls) {
  return {
    id, name, state: 'queued', created: new Date().toISOString(),
    counts: { total: urls, queued: urls, active: 0, done: 0, failed: 0, cancelled: 0 },
    bytes: 0, rate: 0, eta: null
  }
}
const firstJob = job(1, 'a job in every hello', 1)

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/jobs') {
    res.writeHead(404).end()
    return
  }
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    let body
    try {
      body = JSON.parse(Buffer.concat(chunks).toString())
    } catch {
      res.writeHead(400).end()
      return
    }
    const created = job(nextId++, body.name || '', body.urls.length)
    broadcast(JSON.stringify({ type: 'job', seq: ++seq, event: 'created', job: created }))
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify(created))
  })
})
const wss = new WebSocket.Server({ server, perMessageDeflate: false })

function broadcast (text) {
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN && client.bufferedAmount < SEND_BUFFER_LIMIT) client.send(text)
  }
}

wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'hello', protocol: 1, epoch: EPOCH, seq, jobs: [firstJob] }))
})
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`)
})
