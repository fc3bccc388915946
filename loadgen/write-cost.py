#!/usr/bin/env python3
"""What one write of a backlog costs on loopback TCP: one contiguous buffer (os.write) against
the same frames as separate buffers (os.writev). CPU per write of this process, which also
runs the reading thread. Run: python3 loadgen/write-cost.py (about 5 s).
"""
import socket, os, threading, time, resource
def run(mode, n=60000, frames=32, size=200):
    srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
    c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def drain():
        while True:
            b = s.recv(1 << 20)
            if not b: break
    t = threading.Thread(target=drain); t.start()
    bufs = [bytes(size) for _ in range(frames)]
    joined = b''.join(bufs)
    fd = c.fileno()
    r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter()
    for _ in range(n):
        if mode == 'writev':
            os.writev(fd, bufs)
        else:
            os.write(fd, b''.join(bufs))
    c.close(); t.join()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"{mode:7} {frames:2} x {size} B: {cpu / n * 1e6:6.2f} us CPU per write (user {1e6*(r1.ru_utime-r0.ru_utime)/n:5.2f}, sys {1e6*(r1.ru_stime-r0.ru_stime)/n:5.2f}), wall {time.perf_counter()-t0:5.2f} s")
if __name__ == "__main__":
  for frames in (1, 4, 32):
    for mode in ('write', 'writev', 'write', 'writev'):
      run(mode, frames=frames)
