// The Socket.IO 4 side of the rooms benchmark (bench/rooms.mjs): the same job as a
// sealdrop room, the way the seeds' gateways do it: a JWT (HS256, verified with jose)
// in the handshake, `join-room` puts the socket in a Socket.IO room, `send-message`
// is broadcast to the room as `new-message` with a server-assigned id and seq and
// acknowledged. Nothing is stored (the seeds' gateways write to a database; this one
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

http.listen(Number(port), "127.0.0.1", () => console.log(`socket.io listening on ${port}`));
