"""Real exchanges through ccxt: the connection, the venue client, the live feed.

Importing this package does not import ccxt (about 0.7 s and 100 MB); only
`workbench.exchanges.connect` and the modules that use it do, and only a
runner whose config names an exchange imports those.
"""
