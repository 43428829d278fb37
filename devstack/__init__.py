"""Local mode only (never packaged into a Lambda zip): the embedded AWS emulator, the
local runtime that executes the Lambda handlers, Terraform against the emulator, and the
``shopstream`` command line."""
