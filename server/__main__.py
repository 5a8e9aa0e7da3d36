from ghostframe.server.lsp.cli import main

main()
