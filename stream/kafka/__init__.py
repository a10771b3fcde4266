"""
The Kafka adapters: the Faust app, raw ingest, the resolver, the dispatch join, checked writes, topics, ACLs, clients.

Everything that speaks to a broker lives here; the resolution core (`stream.domain`, `stream.codec`,
`stream.resolver`, `stream.records`) never imports from this package.
"""
