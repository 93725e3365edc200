# taskfan: русский

cmd-newtask = Создать задачу на всех серверах
cmd-tasks = Последние задачи
cmd-task = Одна задача по серверам: /task <id>
cmd-done = Отметить выполненными везде: /done <id> [<id>…]
cmd-reopen = Снова открыть задачу: /reopen <id>
cmd-delete = Удалить задачу везде: /delete <id>
cmd-health = Состояние серверов
cmd-stats = Цифры и активность
cmd-mute = Заглушить оповещения: /mute <сервер|all> <1h>
cmd-unmute = Включить оповещения
cmd-timezone = Ваш часовой пояс для сроков: /timezone Europe/Moscow
cmd-reminders = Какие напоминания впереди
cmd-cancel = Прервать текущее действие
cmd-help = Как пользоваться ботом

hello = Здравствуйте, { $name }!
help =
    Я отправляю каждую задачу на все ваши серверы задач и сообщаю, как всё прошло.

    /newtask — создать задачу по шагам
    /newtask Название | описание | p2 | завтра 18:00 | #работа — всё сразу
    /tasks — последние задачи · /task <id> — одна задача подробно
    /health — все ли серверы работают? · /stats — цифры и активность
    /mute git 1h · /mute all 30m · /unmute — оповещения
    /timezone — ваш часовой пояс для сроков · /reminders — что впереди
    /cancel — прервать текущий шаг
nothing-to-cancel = Нечего отменять.
refused = Извините, это частный бот. Ваш id: { $id }; попросите владельца добавить его в ALLOWED_USER_IDS.
slow-down = Помедленнее, пожалуйста: слишком много сообщений за минуту.
error-id = Что-то пошло не так; номер ошибки { $id }.
not-understood = Не понял. /help — что я умею.
button-inactive = Эта кнопка больше не действует.
button-invalid = Эта кнопка недействительна.
read-only = Это могут только разрешённые пользователи бота. Участникам этого чата доступны /health, /stats и кнопки оповещений.
storage-down = Хранилище недоступно ({ $reason }); ничего не изменено. Попробуйте чуть позже.

hint-skippable = (/skip — оставить пустым, /cancel — прервать)
hint-required = (/cancel — прервать)
answer-with-text = Ответьте, пожалуйста, текстом.
cannot-skip = Этот шаг нельзя пропустить.
creating-task = Вы создаёте задачу.
ask-title = Что за задача? Пришлите название.
ask-description = Опишите её.
ask-priority = Насколько важно? Нажмите приоритет или пришлите число от 1 до 5.
ask-deadline = Когда срок? Например «завтра в 18:00», «через 3 дня», «2026-12-01 12:00».
ask-tags = Теги? Пришлите как #работа #срочно или работа, срочно.
cancelled = Отменено. Ничего не создано.
summary-head = Новая задача:
summary-title = • Название: { $value }
summary-description = • Описание: { $value }
summary-priority = • Приоритет: { $value }
summary-deadline = • Срок: { $value }
summary-tags = • Теги: { $value }
btn-create = ✅ Создать
btn-edit = ✏️ Изменить поле
btn-cancel = ✖️ Отмена
use-buttons = Нажмите «Создать», «Изменить поле» или «Отмена» выше (или пришлите /cancel).
which-field = Какое поле?
field-title = название
field-description = описание
field-priority = приоритет
field-deadline = срок
field-tags = теги
field-remind = напоминания
ask-remind = За сколько до срока напомнить? Например «30m», «1h 10m», «1d», «0» (в срок) или «none». /skip — как обычно.
not-created = Не создано: { $error }. Исправьте поле и попробуйте снова.
not-created-storage = Ничего не создано: { $error }. Черновик сохранён; нажмите «Создать» ещё раз чуть позже.
send-failed = ⚠️ Не удалось отправить сообщение ({ $error }). Черновик сохранён.
summary-chars = ({ $count } символов)
created-no-progress = Задача { $id } создана; /task { $id } покажет, как идут дела.
quick-form-help = Быстрая форма: /newtask Название | описание | p2 | завтра 18:00 | #работа | remind 30m
priority-1 = 1 · критично
priority-2 = 2 · высокий
priority-3 = 3 · обычный
priority-4 = 4 · низкий
priority-5 = 5 · когда-нибудь

err-title-empty = Название не может быть пустым.
err-title-long = В названии { $length } символов; не больше 200, пожалуйста.
err-description-long = В описании больше 4000 символов.
err-priority = Приоритет — число от 1 (критично) до 5 (когда-нибудь).
err-date-unreadable = Не понял дату «{ $input }». Попробуйте «завтра 18:00», «через 3 дня» или «2026-12-01 12:00».
err-date-past = { $date } уже прошло; срок должен быть позже.
err-tag-bad = «{ $tag }» не тег: только буквы, цифры, - и _, не длиннее 50.
err-tags-many = Это { $count } тегов; не больше 10.
err-title-control = В названии не должно быть управляющих символов ({ $char }).
err-description-control = В описании не должно быть управляющих символов ({ $char }); переносы строк и табуляция допустимы.
err-tag-reserved = «{ $tag }» не может быть тегом: теги, начинающиеся с taskfan-, — служебные метки taskfan.
err-quick-unknown = Не понял, что такое «{ $part }». Формат: Название | описание | p2 | завтра 18:00 | #тег

task-head = Задача { $id }: { $title }
task-details = Приоритет { $priority }{ $due }{ $tags }
task-due = { " · " }срок { $date }
task-remote = id { $id }
task-attempts = { $count ->
    [one] { $count } попытка
    [few] { $count } попытки
   *[other] { $count } попыток
}
op-undone = отменено
op-undo-failed = отмена не удалась: { $error }
op-undoing = отменяю…
op-done = { $ms } мс
op-skipped = пропущено
op-skipped-why = пропущено: { $reason }
op-retrying-attempt = повтор (попытка { $attempt })
op-working = выполняется…
op-waiting = ждёт: { $reason }
op-retrying = повтор
op-pending = в очереди
sum-done = Готово: задача есть на всех серверах.
sum-partial = Частично: { $reason }. Неудачные шаги повторятся, когда серверы восстановятся.
sum-failed = Не удалось: { $reason }.
sum-rolled-back = Откачено: { $reason }.
sum-working = Выполняется…

health-head = Серверы: { $up } из { $total } в строю
health-breaker = { " · " }предохранитель { $state }
health-storage-down = ⛔ Хранилище недоступно с { $since } UTC: { $reason }. Новые задачи не принимаются; текущая работа сохраняется.
health-checked-by = Оценку дал { $instance }
health-instances = Экземпляры: { $count }
health-instance = • { $id } ({ $host }, pid { $pid }){ $self }: { $singletons }
health-instance-self = { " " }← этот
health-instance-idle = без одиночных ролей
alert-storage-down = ⛔ хранилище недоступно: { $reason }
    с { $since } UTC. Новые задачи не принимаются; текущая работа сохраняется и будет записана, когда оно ответит.
alert-storage-back = ✅ хранилище снова отвечает (было недоступно с { $since } UTC)
btn-refresh = 🔄 Обновить
checking = Проверяю все серверы…

stats-tasks = Задачи: { $list }
stats-none = пока нет
stats-ops = Операции: { $total } · очередь { $queue } · исправлено расхождений { $drift }
stats-hour = За час: { $spark } ({ $count } операций)
stats-uptime = Работает: { $uptime }
stats-server = { $server } { $ops } опер. · { $err } ошибок · p50/p95 { $latency }

tasks-none = Задач пока нет. /newtask создаст первую.
tasks-head = Задачи (страница { $page } из { $pages }):
tasks-head-matching = Задачи: { $filter } (страница { $page } из { $pages }):
tasks-none-matching = Нет задач по запросу «{ $filter }». /tasks all покажет все.
tasks-filter-unknown = Не понимаю «{ $word }». /tasks принимает open (по умолчанию), done, deleted, all, overdue, today, #тег и p1–p5.
tasks-hint = /task <id> — подробно.
tasks-due = срок { $date }
btn-newer = ◀️ Новее
btn-older = Старше ▶️
task-which = Какая задача? Пришлите /task <id>; список — /tasks.
task-missing = Задачи { $id } нет. Список — /tasks.
btn-retry = 🔁 Повторить неудачные
retrying = Повторяю шагов: { $count }
nothing-to-retry = Нечего повторять

mute-none = Ничего не заглушено. /mute <сервер|all> <срок>, например /mute git 1h.
mute-line = 🔕 { $server } до { $until }
mute-no-server = Сервера «{ $target }» нет. Серверы: { $servers } или all.
mute-bad-duration = «{ $span }» — не срок; попробуйте 30m, 1h или 2d.
muted = 🔕 Оповещения для { $target } заглушены до { $until }.
muted-short = Заглушено до { $until }
unmuted = 🔔 Оповещения для { $target } снова включены.
tz-current = Ваш часовой пояс: { $zone } (сейчас { $now }). Сроки читаются и показываются в нём.
    Нажмите кнопку ниже или пришлите /timezone с поясом (Europe/Moscow), городом (Москва) или смещением (UTC+3).
tz-set = ✅ Часовой пояс: { $zone } (сейчас { $now }).
tz-unknown = Не знаю часовой пояс «{ $input }». Пришлите пояс, например Europe/Moscow, город, например Москва, или смещение в целых часах, например UTC+3.
every-server = всех серверов

alert-breaker_open = 🔴 цепь разомкнута
alert-error = 🔴 ОШИБКА
alert-degraded = 🟡 СБОИ
alert-crash_loop = ♻️ постоянные падения
alert-since = с { $since } UTC
alert-times = { " · " }{ $count ->
    [one] { $count } раз
    [few] { $count } раза
   *[other] { $count } раз
}
alert-last-error = последняя ошибка: { $error }
alert-seen-by = заметил экземпляр { $instance }
alert-rolled-back = ↩️ задача откачена: { $id }
alert-recovered = ✅ восстановлен: { $server } снова работает
alert-recovered-was = { " " }(было: { $closed } с { $since } UTC)
alert-task_done = ✅ задача выполнена: { $title } ({ $id }), источник: { $source }
alert-task_reopened = ↩️ задача снова открыта: { $title } ({ $id }), источник: { $source }
alert-task_deleted = 🗑 задача удалена: { $title } ({ $id }), источник: { $source }
btn-show-health = Состояние
btn-mute-hour = Заглушить на час
btn-ack = 👀 Беру на себя
alert-acked = 👀 { $by } занимается (с { $at } UTC)
ack-done = Записано: вы занимаетесь. Повторы этой тревоги не будут звенеть, пока сервер не восстановится.
ack-taken = Этим уже занимается { $by }.
ack-closed = Эта тревога уже закрыта.
health-alerts = Открытые тревоги:
health-alert = • { $kind }: { $server } с { $since } UTC{ $ack }
health-alert-acked = { " " }· занимается { $by }
health-routes = Маршруты оповещений:
health-route = • { $route } ({ $kind }): { $state }
health-route-ok = принимает все оповещения
health-route-retrying = { $count ->
    [one] { $count } оповещение ждёт повтора
    [few] { $count } оповещения ждут повтора
   *[other] { $count } оповещений ждут повтора
} в { $next } UTC
health-route-refused = { $count ->
    [one] { $count } отклонено
   *[other] { $count } отклонено
}
health-route-error = последняя ошибка: { $error }
alert-group = { $kind } на { $count ->
    [one] { $count } сервере
   *[other] { $count } серверах
}: { $servers }
alert-group-mixed = 🔴 сбои на { $count ->
    [one] { $count } сервере
   *[other] { $count } серверах
}: { $servers }
alert-group-back = ✅ { $count ->
        [one] сервер снова работает
        [few] все { $count } сервера снова работают
       *[other] все { $count } серверов снова работают
    }: { $servers }
alert-group-line = • { $kind }: { $server }, с { $since } UTC{ $times }{ $error }
alert-group-error = { " · " }{ $error }
alert-group-line-back = • ✅ { $server } снова работает (было: { $kind } с { $since } UTC)

task-state = Состояние: { $state } · версия { $version }
state-open = открыта
state-done = выполнена ✅
state-deleted = удалена 🗑
change-head = Изменение { $version }: { $kind }
change-update = правка
change-complete = выполнено
change-reopen = снова открыта
change-delete = удаление
found-complete = ✅ Выполнено в { $server }: { $title } ({ $id }). Отмечено и на остальных серверах.
found-reopen = ↩️ Снова открыто в { $server }: { $title } ({ $id }). Открыто и на остальных серверах.
change-settled = Изменение есть на каждом сервере, где есть задача (или сказано, почему нет).
btn-done = ✅ Выполнено
btn-reopen = ↩️ Открыть снова
btn-delete = 🗑 Удалить
btn-delete-confirm = 🗑 Да, удалить везде
btn-keep = Оставить
delete-ask = Удалить задачу { $id } на всех серверах? Отменить это нельзя.
delete-kept = Оставлена.
bulk-ask-complete = Отметить выполненными на всех серверах эти задачи ({ $count })?
bulk-ask-reopen = Открыть снова на всех серверах эти задачи ({ $count })?
btn-bulk-yes = Да, все ({ $count })
change-which = Какая задача? Пришлите /{ $command } <id>; список — /tasks.
change-refused-deleted = Задача { $id } удалена; изменить её нельзя.
change-refused-rolled-back = Задача { $id } отменена (обязательный сервер отказал); изменить её нельзя.
change-already = Задача { $id } уже { $state }.
change-accepted = { $kind } задачи { $id }: отправлено на серверов: { $count }.
change-stale = Кнопка устарела: задача { $id } сейчас { $state }.

reminder = ⏰ Напоминание: { $title } ({ $id })
reminder-due = Срок: { $when }.
reminder-overdue = Срок был { $when }.
reminder-late = С опозданием: оно должно было прийти { $when }, когда taskfan не работал.
btn-snooze-hour = 💤 1 ч
btn-snooze-tomorrow = 💤 Завтра в 9:00
snoozed = Отложено до { $when }.
snooze-already = Уже отложено.
reminders-none = Напоминаний впереди нет. О задаче со сроком я напоминаю за { $defaults } (своё время: «| remind 30m» в /newtask).
reminders-head = Напоминания впереди:
reminders-line = ⏰ { $when } · { $title } ({ $id })
summary-remind = • Напоминания: { $value }
remind-none = нет
remind-at-deadline = в срок
err-remind-bad = Не понял «{ $part }» как время до срока. Пример: remind 30m, remind 1h 10m, remind 1d, remind 0 (в срок) или remind none.
edit-no-task = Это сообщение не о задаче, которую я знаю; ответьте на сообщение, где она названа («Задача …»).
err-edit-unknown = Не понял, что такое «{ $part }». Ответьте строками вида: название: …, описание: …, приоритет: 2, срок: пятница 18:00 (или нет), #тег.
btn-task-edit = ✏️ Изменить
edit-which = Какое поле задачи { $id } ({ $title }) изменить?
edit-cancelled = Отменено. Ничего не изменено.
edit-use-buttons = Нажмите на поле выше (или отправьте /cancel).
cmd-edit = Изменить поле задачи: /edit <id>
found-delete = 🗑 Удалено в { $server }: { $title } ({ $id }). Удалено и на остальных серверах.
found-update = ✏️ Изменено в { $server }: { $title } ({ $id }), теперь { $what }. Изменено и на остальных серверах.
found-value = { $field } { $value }
value-none = нет
sync-conflict = ⚠️ Задача { $id }: в { $server } { $lost }, в { $winner } — { $kept }, оба изменены после прошлой синхронизации; везде оставлено значение из { $winner }.
