// Ceiling reference: a Bun.serve handler that reads a streamed request body and discards it.
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  maxRequestBodySize: 1024 ** 4,
  async fetch(req) {
    let bytes = 0
    if (req.body) for await (const chunk of req.body) bytes += chunk.byteLength
    return Response.json({ bytes })
  },
})
console.log(`LISTENING ${server.port}`)
