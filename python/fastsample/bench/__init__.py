"""The kernel benchmark as a command: `python -m fastsample bench` (bench/cli.py). workload: the
cases and logits; peers: what fastsample is measured against; timing: rounds and their spread;
report: table, headlines and JSON; plots: matplotlib figures; decode_loop: --model's end-to-end
tokens/s."""
