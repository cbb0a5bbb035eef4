"""Source-agnostic download plumbing: the ranged HTTP transfer and the per-kind dispatcher."""
