from sconeflow.cli import main

main()
