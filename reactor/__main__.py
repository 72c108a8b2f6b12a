from reactor.cli import app

app(prog_name="reactor")
