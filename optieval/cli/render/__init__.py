"""Rich renderings for the terminal, one module per command family: the library returns data
(reports, results) and these turn it into tables and lines. Nothing outside the CLI prints."""
