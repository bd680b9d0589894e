from liberacion.cli import run

run()
