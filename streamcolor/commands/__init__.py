"""The `streamcolor` command's commands, one module per job; streamcolor/cli.py registers
them and turns typed errors into exit codes."""
