from ghostframe.server.cli import main

main()
