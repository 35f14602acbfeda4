# Reference: the seed's design. A Flask handler that appends each Dropzone chunk to a file.
# It trusts arrival order, so it is only correct with one chunk in flight.
import os
import re
import sys

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

directory = sys.argv[1]
app = Flask(__name__)


@app.post('/upload')
def upload():
    key = request.form.get('dzuuid', '')
    if not re.fullmatch(r'[A-Za-z0-9_-]{1,100}', key):
        return jsonify(error='bad dzuuid'), 400
    chunk = request.files['file']
    with open(os.path.join(directory, key), 'ab') as out:
        out.write(chunk.read())
    return jsonify(ok=True)


server = make_server('127.0.0.1', 0, app, threaded=True)
print(f'LISTENING {server.port}', flush=True)
server.serve_forever()
