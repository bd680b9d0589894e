from liberacion.cli import main

main()
