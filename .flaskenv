# Read by the `flask` command only (python-dotenv). Local development defaults: `flask run` serves
# on 127.0.0.1:8004 with the SQLite file; real settings come from the environment or `.env`.
FLASK_APP=app:create_app
FLASK_RUN_PORT=8004
APP_ENV=development
REQUIRE_SERVICE_AUTH=false
