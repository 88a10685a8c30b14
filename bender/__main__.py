from bender.cli import main

main()
