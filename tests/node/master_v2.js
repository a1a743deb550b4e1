"use strict";
/*
 * The real socket.io 2.x server (Engine.IO v3), pinned as "socket.io-v2" in imdiag/node/package.json:
 * the master an old deployment runs, for the tests of `imdiag doctor`'s protocol-mismatch.
 *
 * Usage: IMDIAG_NODE_PREFIX=<dir with node_modules> node master_v2.js '{"limit":1000000,"namespace":"/worker"}'
 * Prints {"event":"listening","port":N,"version":"2.5.1"} on stdout once it listens on 127.0.0.1;
 * exits when its stdin closes (so it never outlives the test) or on SIGTERM.
 */
const http = require("http");
const Module = require("module");
const path = require("path");

const prefix = process.env.IMDIAG_NODE_PREFIX;
const load = prefix ? Module.createRequire(path.join(prefix, "package.json")) : require;
const createServer = load("socket.io-v2");
const version = load("socket.io-v2/package.json").version;

const opts = Object.assign({ limit: 1e6, namespace: "/" }, JSON.parse(process.argv[2] || "{}"));
const httpServer = http.createServer();
const io = createServer(httpServer, { maxHttpBufferSize: opts.limit });
io.of(opts.namespace).on("connection", (socket) => {
  socket.on("message", (msg, ack) => {
    if (typeof ack === "function") ack(true);
  });
});

function shutdown() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ event: "listening", port: httpServer.address().port, version }) + "\n");
});
