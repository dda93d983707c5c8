#!/usr/bin/env python3
"""A TCP proxy that can cut a link, for the chaos suite (loopback only).

    proxy.py LISTEN_PORT TARGET_PORT [LISTEN_PORT TARGET_PORT ...]

Forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT, for every pair.
SIGUSR1 cuts: nothing is forwarded any more (bytes read are dropped, new
connections are accepted and held silent), like a partition that neither
side notices. SIGUSR2 heals: every connection held so far is reset, so both
ZeroMQ ends reconnect and whatever was in flight is lost, as on a real
network. Prints one line per state change; exits on SIGTERM.
"""
import asyncio
import signal
import sys

cut = False
conns = set()  # (reader_writer pairs) to reset when healing


async def pump(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if cut:
                continue  # blackhole
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def handler(target):
    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        pair = (cw, tw)
        conns.add(pair)
        tasks = [asyncio.ensure_future(pump(cr, tw)), asyncio.ensure_future(pump(tr, cw))]
        pair_tasks[pair] = tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in pair:
                try:
                    w.close()
                except Exception:
                    pass
            conns.discard(pair)
            pair_tasks.pop(pair, None)

    return handle


pair_tasks = {}


def do_cut():
    global cut
    cut = True
    print("proxy: cut", flush=True)


def do_heal():
    global cut
    cut = False
    n = 0
    for pair in list(conns):
        for w in pair:
            try:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    # RST instead of FIN: the peer sees the link break.
                    import socket
                    import struct
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            except Exception:
                pass
        for t in pair_tasks.get(pair, []):
            t.cancel()
        n += 1
    print(f"proxy: healed, reset {n} connections", flush=True)


async def main(pairs):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, do_cut)
    loop.add_signal_handler(signal.SIGUSR2, do_heal)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    servers = []
    for lp, tp in pairs:
        servers.append(await asyncio.start_server(handler(tp), "127.0.0.1", lp))
    print("proxy: ready " + " ".join(f"{lp}->{tp}" for lp, tp in pairs), flush=True)
    await stop
    for s in servers:
        s.close()


if __name__ == "__main__":
    a = [int(x) for x in sys.argv[1:]]
    if len(a) < 2 or len(a) % 2:
        sys.exit("usage: proxy.py LISTEN_PORT TARGET_PORT [...]")
    asyncio.run(main(list(zip(a[0::2], a[1::2]))))
