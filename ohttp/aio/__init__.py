"""The asyncio layer of ``ohttp``: the client, and the serving shell the servers share.

- :mod:`ohttp.aio.client`: the async client (aiohttp);
- :mod:`ohttp.aio.serving`, :mod:`ohttp.aio.guard`, :mod:`ohttp.aio.logs`,
  :mod:`ohttp.aio.supervisor`: listeners, the connection guard, privacy-safe logs, forked workers;
- :mod:`ohttp.aio.settings`: flags, TOML and environment layered into frozen settings;
- :mod:`ohttp.aio.keyfile`: the gateway's key file (read, write, rotate).

It imports the core (``ohttp``) and never the apps; the apps and the command line import it.
"""

__all__: list[str] = []  # each module is imported by name; the client's API is ohttp.aio.client
