"""What a person looks at after a run: an HTML report with a candidate gallery, figures, and terminal summaries.

`build.build_report` writes the report, `build.write_figures` only the figures, `summary.run_summary`
the terminal tables; imports stay in those modules so `ttscale summary` never loads matplotlib.
"""
