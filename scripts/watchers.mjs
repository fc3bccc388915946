// Opens COUNT WebSocket connections that each subscribe to one match's own topic: COUNT more fans
// watching it, as the service counts them (`watching`). For screenshots and manual checks of the
// "N watching" line; it reads nothing and runs until killed.
//
//   node --experimental-websocket scripts/watchers.mjs ws://127.0.0.1:8080/ws <match topic> <count>
//
// (Node 22 and later have WebSocket without the flag.) Connections open 50 at a time, every
// 100 ms, so a large count does not arrive as one burst of handshakes.
const [url, topic, countText] = process.argv.slice(2);
const count = Number(countText);
if (!url || !topic || !Number.isInteger(count) || count < 1) {
  console.error("usage: watchers.mjs <ws url> <match topic> <count>");
  process.exit(2);
}
let subscribed = 0;
let started = 0;
const sockets = [];
function connect(index) {
  const socket = new WebSocket(url);
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "subscribe", topics: [topic] }));
    subscribed += 1;
    if (subscribed === count) console.log(`watchers: ${subscribed} fans watching ${topic}`);
  };
  socket.onerror = (event) => console.error(`watcher ${index}: ${event.message ?? "error"}`);
  sockets.push(socket);
}
const timer = setInterval(() => {
  for (let batch = 0; batch < 50 && started < count; batch += 1, started += 1) connect(started);
  if (started >= count) clearInterval(timer);
}, 100);
