"""The queue page: a LOVE-style ScriptQueue panel served on localhost.

Modules (imported one by one, so that building the ``calibscripts``
parser does not load the web server):

``queue_bridge``
    `QueueBridge`: follows one ScriptQueue and its scripts over the
    kernel, and sends the queue its commands.
``script_view``
    `ScriptView`: what the page shows of one script.
``config_check``
    `check_config`: validates the CONFIG editor's text as the script will.
``access``
    `AccessPolicy`: the ``Host`` names the page accepts (against DNS
    rebinding) and the token it requires off the loopback interface.
``server``
    `make_app`: the page (``static/``: plain HTML, CSS and JavaScript, no
    build step), its JSON API and its live event stream.
``cli``
    ``calibscripts ui`` (`run_ui`): all of it, optionally with the queue
    and the simulated observatory in the same process.
"""
