// The Socket.IO 4 side of the rooms benchmark (bench/rooms.mjs): the same job as a
// sealdrop room, the way the seeds' gateways do it: a JWT (HS256, verified with jose)
// in the handshake, `join-room` puts the socket in a Socket.IO room, `send-message`
// is broadcast to the room as `new-message` with a server-assigned id and seq and
// acknowledged; `file-upload-progress` of an upload (`upload-start`) is broadcast at
// most every 250 ms, the newest value kept for a trailing timer, as a sealdrop room
// does (scenario d). Nothing is stored (the seeds' gateways write to a database; this one
// does not, which favours it). WebSocket transport only, 127.0.0.1 only.
//
//   node bench/rooms-socketio-server.mjs <port> <secret-hex>
import { createServer } from "node:http";
import { jwtVerify } from "jose";
import { Server } from "socket.io";

const [port, secretHex] = process.argv.slice(2);
const secret = Buffer.from(secretHex, "hex");
const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });
const seqs = new Map();

io.use(async (socket, next) => {
  try {
    const { payload } = await jwtVerify(socket.handshake.auth.token, secret, { algorithms: ["HS256"], audience: "sealdrop" });
    socket.data.user = { id: payload.sub, name: payload.name ?? payload.sub, rooms: payload.rooms ?? {} };
    next();
  } catch {
    next(new Error("invalid_token"));
  }
});

io.on("connection", (socket) => {
  socket.on("join-room", ({ roomId }, ack) => {
    if (!socket.data.user.rooms[roomId] && !socket.data.user.rooms["*"]) return ack?.({ error: "unauthorized" });
    socket.join(roomId);
    socket.data.room = roomId;
    ack?.({ roomId, head: seqs.get(roomId) ?? 0 });
  });
  socket.on("send-message", ({ text, attachments = [] }, ack) => {
    const roomId = socket.data.room;
    if (!roomId || typeof text !== "string") return ack?.({ error: "not_joined" });
    const seq = (seqs.get(roomId) ?? 0) + 1;
    seqs.set(roomId, seq);
    const message = {
      roomId, id: `m${seq}`, seq, senderId: socket.data.user.id, senderName: socket.data.user.name,
      text, attachments, timestamp: new Date().toISOString(),
    };
    io.to(roomId).emit("new-message", message);
    ack?.({ messageId: message.id, seq, timestamp: message.timestamp });
  });
});

// Progress coalescing, as the Room object does it: per upload, at most one broadcast
// per 250 ms; a report inside the interval is kept and the newest goes out at its end.
const uploads = new Map();
let uploadCount = 0;
io.on("connection", (socket) => {
  socket.on("upload-start", ({ size }, ack) => {
    if (!socket.data.room) return ack?.({ error: "not_joined" });
    const fileId = `u${++uploadCount}`;
    uploads.set(fileId, { roomId: socket.data.room, size, last: 0, pending: null, timer: null });
    ack?.({ fileId });
  });
  socket.on("file-upload-progress", ({ fileId, bytesUploaded }) => {
    const u = uploads.get(fileId);
    if (!u || bytesUploaded > u.size) return;
    const send = (bytes) => {
      u.last = Date.now();
      io.to(u.roomId).emit("file-upload-progress", { roomId: u.roomId, fileId, bytesUploaded: bytes, totalBytes: u.size });
    };
    const wait = u.last + 250 - Date.now();
    if (wait <= 0 && !u.timer) return send(bytesUploaded);
    u.pending = bytesUploaded;
    u.timer ??= setTimeout(() => { u.timer = null; send(u.pending); }, Math.max(wait, 0));
  });
});

http.listen(Number(port), "127.0.0.1", () => console.log(`socket.io listening on ${port}`));
