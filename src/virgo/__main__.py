from virgo.cli import main

main()
