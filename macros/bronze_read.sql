{#- For the incremental stg_events__app_events: which bronze batches a build has not read yet.

    The events stage names each bronze partition `<run id>-<micro-batch id>`, and the micro-batch id grows with
    every batch the stream's checkpoint commits (bronze starts afresh with the checkpoint). So the batches a build
    has not read are those with an id above the highest it read, which its post-hook records on the table
    (`encore.bronze_through_batch_id`), with that batch's name and how many batches bronze held then: the marts
    stage checks both (python_jobs/events/ingest.py, `bronze_lost`) and rebuilds the table in full when bronze
    lost a batch it read (started afresh, or one dropped by hand). A batch that held only resends is read once,
    not again by every later build. -#}

{#- The names of the batches bronze holds (its partitions with rows: Iceberg's metadata, no data read). -#}
{% macro bronze_batches() -%}
    {{ return(run_query("select partition.ingest_batch from " ~ source('events', 'bronze_app_events')
                        ~ ".partitions").columns[0].values() | list) }}
{%- endmacro %}

{#- A batch name's micro-batch id (its name is `<run id>-<id>`); -1 for a name of another form. -#}
{% macro bronze_batch_id(name) -%}
    {{ return(name.split('-')[-1] | int(-1)) }}
{%- endmacro %}

{#- The batches above micro-batch id `through`: what a build has not read. Named in the build's filter, so Iceberg
    reads only their partitions. -#}
{% macro bronze_batches_after(through) -%}
    {%- set after = [] -%}
    {%- for name in bronze_batches() if bronze_batch_id(name) > through -%}
        {%- do after.append(name) -%}
    {%- endfor -%}
    {{ return(after | sort) }}
{%- endmacro %}

{#- The highest micro-batch id the last build read; raises on a table built before it recorded it. -#}
{% macro bronze_read_through(relation) -%}
    {%- set recorded = table_properties(relation) -%}
    {%- if 'encore.bronze_through_batch_id' not in recorded -%}
        {{ exceptions.raise_compiler_error(relation ~ " was built before it recorded the bronze batches it read:"
            ~ " build it once with --full-refresh") }}
    {%- endif -%}
    {{ return(recorded['encore.bronze_through_batch_id'] | int) }}
{%- endmacro %}

{#- The post-hook of every build: the newest batch bronze holds (its id and name) and how many it holds. Nothing
    writes bronze while the marts are built (one run at a time), so these are the batches the build read. -#}
{% macro record_bronze_read() -%}
    {%- if execute -%}
        {%- set through = {'id': -1, 'name': '', 'count': 0} -%}
        {%- for name in bronze_batches() -%}
            {%- set id = bronze_batch_id(name) -%}
            {%- do through.update({'count': through['count'] + 1}) -%}
            {%- if id > through['id'] or (id == through['id'] and name > through['name']) -%}
                {%- do through.update({'id': id, 'name': name}) -%}
            {%- endif -%}
        {%- endfor -%}
        alter table {{ this }} set tblproperties ('encore.bronze_through_batch_id' = '{{ through['id'] }}',
            'encore.bronze_through_batch' = '{{ through['name'] }}', 'encore.bronze_batches_read' = '{{ through['count'] }}')
    {%- endif -%}
{%- endmacro %}
