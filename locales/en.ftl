# taskfan: English (the fallback)

cmd-newtask = Create a task on every server
cmd-tasks = The last tasks
cmd-task = One task, server by server: /task <id>
cmd-done = Mark tasks done everywhere: /done <id> [<id>…]
cmd-reopen = Open a done task again: /reopen <id>
cmd-delete = Delete a task everywhere: /delete <id>
cmd-health = The state of every server
cmd-stats = Numbers and activity
cmd-mute = Silence alerts: /mute <server|all> <1h>
cmd-unmute = Alerts back on
cmd-timezone = Your time zone for deadlines: /timezone Europe/Berlin
cmd-reminders = What reminders are coming
cmd-cancel = Stop what you are doing
cmd-help = How to use this bot

hello = Hello, { $name }!
help =
    I send each task you create to all your task servers and tell you how it went.

    /newtask — create a task, step by step
    /newtask Title | description | p2 | tomorrow 18:00 | #work — all at once
    /tasks — the last tasks · /task <id> — one task in detail
    /health — is every server up? · /stats — numbers and activity
    /mute git 1h · /mute all 30m · /unmute — alerts
    /timezone — your time zone for deadlines · /reminders — what is coming
    /cancel — stop the current step
nothing-to-cancel = Nothing to cancel.
refused = Sorry, this bot is private. Your user id is { $id }; ask the owner to add it to ALLOWED_USER_IDS.
slow-down = Slow down a little, please: too many messages in a minute.
error-id = Something went wrong; the error id is { $id }.
not-understood = I did not get that. /help lists what I can do.
button-inactive = That button is no longer active.
button-invalid = That button is not valid.
read-only = Only the bot's allowed users can do that. Members of this chat can use /health, /stats and the alert buttons.
storage-down = Storage is unavailable ({ $reason }); nothing was changed. Try again in a moment.

hint-skippable = (/skip to leave it empty, /cancel to stop)
hint-required = (/cancel to stop)
answer-with-text = Please answer with text.
cannot-skip = This one cannot be skipped.
creating-task = You are creating a task.
ask-title = What is the task? Send its title.
ask-description = Describe it.
ask-priority = How important is it? Tap a priority or send 1 to 5.
ask-deadline = When is it due? For example "tomorrow 18:00", "in 3 days", "2026-12-01 12:00".
ask-tags = Tags? Send them as #work #urgent or work, urgent.
cancelled = Cancelled. Nothing was created.
summary-head = New task:
summary-title = • Title: { $value }
summary-description = • Description: { $value }
summary-priority = • Priority: { $value }
summary-deadline = • Deadline: { $value }
summary-tags = • Tags: { $value }
btn-create = ✅ Create
btn-edit = ✏️ Edit a field
btn-cancel = ✖️ Cancel
use-buttons = Tap Create, Edit a field or Cancel above (or send /cancel).
which-field = Which field?
field-title = title
field-description = description
field-priority = priority
field-deadline = deadline
field-tags = tags
field-remind = reminders
ask-remind = How long before the deadline should I remind you? For example "30m", "1h 10m", "1d", "0" (at the deadline) or "none". /skip keeps the default.
not-created = Not created: { $error }. Edit the field and try again.
not-created-storage = Nothing was created: { $error }. Your draft is kept; tap Create again in a moment.
send-failed = ⚠️ I could not send that message ({ $error }). Your draft is kept.
summary-chars = ({ $count } characters)
created-no-progress = Task { $id } is created; /task { $id } shows how it goes.
quick-form-help = Quick form: /newtask Title | description | p2 | tomorrow 18:00 | #work | remind 30m
priority-1 = 1 · critical
priority-2 = 2 · high
priority-3 = 3 · normal
priority-4 = 4 · low
priority-5 = 5 · someday

err-title-empty = The title may not be empty.
err-title-long = The title has { $length } characters; 200 at most, please.
err-description-long = The description has more than 4000 characters.
err-priority = The priority is a number from 1 (critical) to 5 (someday).
err-date-unreadable = I could not read "{ $input }" as a date. Try "tomorrow 18:00", "in 3 days" or "2026-12-01 12:00".
err-date-past = { $date } is in the past; the deadline must be later.
err-tag-bad = "{ $tag }" is not a tag: letters, digits, - and _ only, 50 at most.
err-tags-many = That is { $count } tags; 10 at most.
err-title-control = The title may not hold control characters ({ $char }).
err-description-control = The description may not hold control characters ({ $char }); line breaks and tabs are fine.
err-tag-reserved = "{ $tag }" cannot be a tag: tags starting with taskfan- are taskfan's own markers.
err-quick-unknown = I do not know what "{ $part }" is. Use: Title | description | p2 | tomorrow 18:00 | #tag

task-head = Task { $id }: { $title }
task-details = Priority { $priority }{ $due }{ $tags }
task-due = { " · " }due { $date }
task-remote = id { $id }
task-attempts = { $count ->
    [one] 1 attempt
   *[other] { $count } attempts
}
op-undone = undone
op-undo-failed = undo failed: { $error }
op-undoing = undoing…
op-done = { $ms } ms
op-skipped = skipped
op-skipped-why = skipped: { $reason }
op-retrying-attempt = retrying (attempt { $attempt })
op-working = working…
op-waiting = waiting: { $reason }
op-retrying = retrying
op-pending = pending
sum-done = Done: every server has it.
sum-partial = Partial: { $reason }. Failed steps are retried when their servers recover.
sum-failed = Failed: { $reason }.
sum-rolled-back = Rolled back: { $reason }.
sum-working = Working…

health-head = Servers: { $up } of { $total } online
health-breaker = { " · " }breaker { $state }
health-storage-down = ⛔ Storage unavailable since { $since } UTC: { $reason }. New tasks are refused; work in flight is kept.
health-checked-by = Rated by { $instance }
health-instances = Instances: { $count }
health-instance = • { $id } ({ $host }, pid { $pid }){ $self }: { $singletons }
health-instance-self = { " " }← this one
health-instance-idle = no singletons
alert-storage-down = ⛔ storage unavailable: { $reason }
    since { $since } UTC. New tasks are refused; work in flight is kept and recorded when it answers.
alert-storage-back = ✅ storage answers again (was unavailable since { $since } UTC)
btn-refresh = 🔄 Refresh
checking = Checking every server…

stats-tasks = Tasks: { $list }
stats-none = none yet
stats-ops = Operations: { $total } · queue { $queue } · drift repairs { $drift }
stats-hour = Last hour: { $spark } ({ $count } operations)
stats-uptime = Uptime: { $uptime }
stats-server = { $server } { $ops } ops · { $err } err · p50/p95 { $latency }

tasks-none = No tasks yet. /newtask creates one.
tasks-head = Tasks (page { $page } of { $pages }):
tasks-head-matching = Tasks: { $filter } (page { $page } of { $pages }):
tasks-none-matching = No tasks match "{ $filter }". /tasks all lists every task.
tasks-filter-unknown = I do not know "{ $word }". /tasks takes open (the default), done, deleted, all, overdue, today, #tag and p1 to p5.
tasks-hint = /task <id> shows one.
tasks-due = due { $date }
btn-newer = ◀️ Newer
btn-older = Older ▶️
task-which = Which task? Send /task <id>; /tasks lists them.
task-missing = There is no task { $id }. /tasks lists them.
btn-retry = 🔁 Retry failed
retrying = { $count ->
    [one] Retrying 1 step
   *[other] Retrying { $count } steps
}
nothing-to-retry = Nothing to retry

mute-none = Nothing is muted. Use /mute <server|all> <duration>, e.g. /mute git 1h.
mute-line = 🔕 { $server } until { $until }
mute-no-server = There is no server "{ $target }". Servers: { $servers }, or all.
mute-bad-duration = "{ $span }" is not a duration; try 30m, 1h or 2d.
muted = 🔕 Alerts for { $target } muted until { $until }.
muted-short = Muted until { $until }
unmuted = 🔔 Alerts for { $target } are on again.
tz-current = Your time zone: { $zone } (now { $now }). Deadlines you type are read in it and shown in it.
    Tap one below, or send /timezone with a zone (Europe/Berlin), a city (Moscow) or an offset (UTC+3).
tz-set = ✅ Time zone set: { $zone } (now { $now }).
tz-unknown = I do not know the time zone "{ $input }". Send a zone such as Europe/Berlin, a city such as Moscow, or a whole-hour offset such as UTC+3.
every-server = every server

alert-breaker_open = 🔴 circuit open
alert-error = 🔴 ERROR
alert-degraded = 🟡 DEGRADED
alert-crash_loop = ♻️ crash loop
alert-since = since { $since } UTC
alert-times = { " · " }{ $count ->
    [one] once
   *[other] { $count } times
}
alert-last-error = last error: { $error }
alert-seen-by = seen by { $instance }
alert-rolled-back = ↩️ task rolled back: task { $id }
alert-recovered = ✅ recovered: { $server } is back
alert-recovered-was = { " " }(was: { $closed } since { $since } UTC)
alert-task_done = ✅ task done: { $title } ({ $id }), by { $source }
alert-task_reopened = ↩️ task reopened: { $title } ({ $id }), by { $source }
alert-task_deleted = 🗑 task deleted: { $title } ({ $id }), by { $source }
btn-show-health = Show health
btn-mute-hour = Mute 1 h
btn-ack = 👀 I'm on it
alert-acked = 👀 { $by } is on it (since { $at } UTC)
ack-done = Noted: you are on it. Repeats of this alert will not ring until it recovers.
ack-taken = { $by } is on it already.
ack-closed = This alert is closed already.
health-alerts = Open alerts:
health-alert = • { $kind }: { $server } since { $since } UTC{ $ack }
health-alert-acked = { " " }· { $by } is on it
health-routes = Alert routes:
health-route = • { $route } ({ $kind }): { $state }
health-route-ok = takes every alert
health-route-retrying = { $count ->
    [one] 1 alert to try again
   *[other] { $count } alerts to try again
} at { $next } UTC
health-route-refused = { $count ->
    [one] 1 refused
   *[other] { $count } refused
}
health-route-error = last error: { $error }
alert-group = { $kind } on { $count ->
    [one] 1 server
   *[other] { $count } servers
}: { $servers }
alert-group-mixed = 🔴 problems on { $count ->
    [one] 1 server
   *[other] { $count } servers
}: { $servers }
alert-group-back = ✅ { $count ->
    [one] the server is back
   *[other] all { $count } servers are back
}: { $servers }
alert-group-line = • { $kind }: { $server }, since { $since } UTC{ $times }{ $error }
alert-group-error = { " · " }{ $error }
alert-group-line-back = • ✅ { $server } is back (was { $kind } since { $since } UTC)

task-state = State: { $state } · version { $version }
state-open = open
state-done = done ✅
state-deleted = deleted 🗑
change-head = Change { $version }: { $kind }
change-update = edit
change-complete = done
change-reopen = reopen
change-delete = delete
found-complete = ✅ Done in { $server }: { $title } ({ $id }). Marked done on the other servers too.
found-reopen = ↩️ Reopened in { $server }: { $title } ({ $id }). Reopened on the other servers too.
change-settled = Every server that holds the task has the change (or says why not).
btn-done = ✅ Done
btn-reopen = ↩️ Reopen
btn-delete = 🗑 Delete
btn-delete-confirm = 🗑 Yes, delete everywhere
btn-keep = Keep it
delete-ask = Delete task { $id } on every server? This cannot be undone.
delete-kept = Kept.
bulk-ask-complete = Mark these { $count } tasks done on every server?
bulk-ask-reopen = Reopen these { $count } tasks on every server?
btn-bulk-yes = Yes, all { $count }
change-which = Which task? Send /{ $command } <id>; /tasks lists them.
change-refused-deleted = Task { $id } was deleted; it cannot be changed.
change-refused-rolled-back = Task { $id } was rolled back (a required server failed); it cannot be changed.
change-already = Task { $id } is { $state } already.
change-accepted = { $kind } of task { $id }: on its way to { $count } servers.
change-stale = That button is out of date: task { $id } is { $state } now.

reminder = ⏰ Reminder: { $title } ({ $id })
reminder-due = Due { $when }.
reminder-overdue = It was due { $when }.
reminder-late = Late: it was to come { $when }, while taskfan was not running.
btn-snooze-hour = 💤 1 h
btn-snooze-tomorrow = 💤 Tomorrow 9:00
snoozed = Snoozed until { $when }.
snooze-already = Already snoozed.
reminders-none = No reminders are coming. A task with a deadline is reminded { $defaults } before it (set yours with "| remind 30m" in /newtask).
reminders-head = Coming reminders:
reminders-line = ⏰ { $when } · { $title } ({ $id })
summary-remind = • Reminders: { $value }
remind-none = none
remind-at-deadline = at the deadline
err-remind-bad = I could not read "{ $part }" as a time before the deadline. Use: remind 30m, remind 1h 10m, remind 1d, remind 0 (at the deadline) or remind none.
edit-no-task = That message is about no task I know; reply to a message that names one ("Task …").
err-edit-unknown = I do not know what "{ $part }" is. Reply with lines such as: title: …, description: …, priority: 2, deadline: friday 18:00 (or none), #tag.
btn-task-edit = ✏️ Edit
edit-which = Which field of task { $id } ({ $title }) do you want to change?
edit-cancelled = Cancelled. Nothing was changed.
edit-use-buttons = Tap a field above (or send /cancel).
cmd-edit = Change a field of a task: /edit <id>
found-delete = 🗑 Deleted in { $server }: { $title } ({ $id }). Deleted on the other servers too.
found-update = ✏️ Changed in { $server }: { $title } ({ $id }), now { $what }. Changed on the other servers too.
found-value = { $field } { $value }
value-none = none
sync-conflict = ⚠️ Task { $id }: { $server } had { $lost } and { $winner } { $kept }, both changed since the last sync; { $winner }'s is kept everywhere.
