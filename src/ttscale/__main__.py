from ttscale.cli import main

main()
