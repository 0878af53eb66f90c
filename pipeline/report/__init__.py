"""`comodo report`: results table, confusion matrices, embedding maps and curves in one
Markdown and one self-contained HTML file."""
