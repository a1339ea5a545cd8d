// End-to-end tests of chatd's Socket.IO transport (internal/socketio) with the
// real socket.io-client v2 (Engine.IO 3, node-chat's SDK) and v4 (Engine.IO 4).
// The server is cmd/sioconformance; set SIO_SERVER_BIN to use a prebuilt one.
//
//   node --test test/socketio/
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import io2 from "socket.io-client-v2";
import { io as io4 } from "socket.io-client";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let server;
let base;

before(async () => {
  let bin = process.env.SIO_SERVER_BIN;
  if (!bin) {
    bin = path.join(mkdtempSync(path.join(tmpdir(), "sioconf-")), "sioconformance");
    execFileSync("go", ["build", "-o", bin, "./cmd/sioconformance"], { cwd: repo, stdio: "inherit" });
  }
  server = spawn(bin, ["-addr", "127.0.0.1:0", "-ping-interval", "2s", "-ping-timeout", "5s", "-connect-timeout", "10s"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  base = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/listening on (\S+)/);
      if (m) resolve(`http://${m[1]}`);
    });
    server.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
});

after(() => {
  server?.kill("SIGTERM");
});

const clients = [
  { name: "socket.io-client@2", version: 2, connect: (nsp, opts) => io2(base + nsp, { forceNew: true, reconnection: false, ...opts }) },
  { name: "socket.io-client@4", version: 4, connect: (nsp, opts) => io4(base + nsp, { forceNew: true, reconnection: false, ...opts }) },
];

const transportModes = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  "polling+upgrade": {},
};

function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function emitWithAck(socket, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ack timeout")), 10000);
    socket.emit(...args, (...reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

function engineOf(socket) {
  return socket.io.engine;
}

for (const client of clients) {
  describe(client.name, () => {
    for (const [mode, opts] of Object.entries(transportModes)) {
      test(`${mode}: connect, emit with ack, echo`, async () => {
        const socket = client.connect("/", opts);
        try {
          const ready = once(socket, "connect");
          // Emitted in the same tick as the connect event: must not be lost.
          const early = new Promise((resolve) => {
            socket.on("connect", () => {
              socket.emit("message-with-ack", "same-tick", (...reply) => resolve(reply));
            });
          });
          await ready;
          assert.deepEqual(await early, ["same-tick"]);
          assert.deepEqual(await emitWithAck(socket, "message-with-ack", 1, "2", { 3: [true] }), [1, "2", { 3: [true] }]);
          const back = once(socket, "message-back");
          socket.emit("message", "hello", { n: 1 });
          assert.deepEqual(await back, ["hello", { n: 1 }]);
          if (mode === "polling+upgrade") {
            const engine = engineOf(socket);
            if (engine.transport.name !== "websocket") await once(engine, "upgrade");
            assert.equal(engine.transport.name, "websocket");
            assert.deepEqual(await emitWithAck(socket, "message-with-ack", "after upgrade"), ["after upgrade"]);
          } else {
            assert.equal(engineOf(socket).transport.name, opts.transports[0]);
          }
        } finally {
          socket.close();
        }
      });

      test(`${mode}: binary both ways`, async () => {
        const socket = client.connect("/", opts);
        try {
          await once(socket, "connect");
          const back = once(socket, "message-back");
          socket.emit("message", Buffer.from([1, 2, 3]), "text", Buffer.from([]));
          const [a, b, c] = await back;
          assert.deepEqual(Buffer.from(a), Buffer.from([1, 2, 3]));
          assert.equal(b, "text");
          assert.equal(Buffer.from(c).length, 0);
          const reply = await emitWithAck(socket, "message-with-ack", Buffer.from("chatd"));
          assert.equal(Buffer.from(reply[0]).toString(), "chatd");
        } finally {
          socket.close();
        }
      });

      test(`${mode}: payload over 1 MB is refused cleanly`, async () => {
        const socket = client.connect("/", opts);
        try {
          await once(socket, "connect");
          const gone = once(socket, "disconnect", 20000);
          socket.emit("message", "x".repeat(1_100_000));
          await gone;
        } finally {
          socket.close();
        }
        // The server still serves others.
        const other = client.connect("/", opts);
        try {
          await once(other, "connect");
          assert.deepEqual(await emitWithAck(other, "message-with-ack", "still serving"), ["still serving"]);
        } finally {
          other.close();
        }
      });
    }

    test("auth refused shows the message; a good token connects", async () => {
      const bad =
        client.version === 2
          ? client.connect("/secure", { transports: ["websocket"], query: { token: "bad" } })
          : client.connect("/secure", { auth: { token: "bad" } });
      try {
        if (client.version === 2) {
          const [err] = await once(bad, "error");
          assert.equal(err, "unauthorized: bad token");
        } else {
          const [err] = await once(bad, "connect_error");
          assert.equal(err.message, "unauthorized: bad token");
        }
        assert.equal(bad.connected, false);
      } finally {
        bad.close();
      }
      const good =
        client.version === 2
          ? client.connect("/secure", { transports: ["websocket"], query: { token: "secret" } })
          : client.connect("/secure", { auth: { token: "secret" } });
      try {
        await once(good, "connect");
        assert.deepEqual(await emitWithAck(good, "whoami"), ["secret"]);
      } finally {
        good.close();
      }
    });

    test("rooms: a broadcast reaches members only", async () => {
      const sockets = [0, 1, 2].map(() => client.connect("/", { transports: ["websocket"] }));
      try {
        await Promise.all(sockets.map((s) => once(s, "connect")));
        await emitWithAck(sockets[0], "join", "r1");
        await emitWithAck(sockets[1], "join", "r1");
        let outsider = 0;
        sockets[2].on("broadcast", () => outsider++);
        const got = [once(sockets[0], "broadcast"), once(sockets[1], "broadcast")];
        await emitWithAck(sockets[2], "broadcast", "r1", "news", Buffer.from([9]));
        for (const [text, bin] of await Promise.all(got)) {
          assert.equal(text, "news");
          assert.deepEqual(Buffer.from(bin), Buffer.from([9]));
        }
        // The outsider's own ack came back after the broadcast was queued.
        assert.equal(outsider, 0);
      } finally {
        sockets.forEach((s) => s.close());
      }
    });
  });
}
