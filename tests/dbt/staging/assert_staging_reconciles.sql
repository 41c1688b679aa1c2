-- Every raw row ends in exactly one place: raw = clean + rejected, per table.
{% set tables = ['users', 'listings', 'bids', 'user_interests', 'promotions'] %}
{% for t in tables %}
select
    '{{ t }}' as source_table,
    (select count(*) from {{ source('raw', t) }}) as raw_rows,
    (select count(*) from {{ ref('stg_raw__' ~ t) }}) as clean_rows,
    (select count(*) from {{ ref('stg_raw__' ~ t ~ '_rejected') }}) as rejected_rows
where (select count(*) from {{ source('raw', t) }})
    <> (select count(*) from {{ ref('stg_raw__' ~ t) }})
    + (select count(*) from {{ ref('stg_raw__' ~ t ~ '_rejected') }})
{% if not loop.last %}union all{% endif %}
{% endfor %}
