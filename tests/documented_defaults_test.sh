#!/bin/bash
# The "// default V" comments of the options protos agree with the plugins' SetDefaults.
exec python3 "$@"
