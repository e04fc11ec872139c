"""The gateway's WebSocket (/ws): an owner's events, replayed from an event id and then live
(`events.py`, over balance_tracker's StreamEvents), and how many sockets it holds in total
and per client (`limits.py`)."""
