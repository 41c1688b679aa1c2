-- depends_on: {{ ref('run_history_runs') }}
-- The lists being served obey the marketplace's rules as they stand now (seed `list_rules`): in the latest
-- published run's recs tables, no user's own listing, no suspended seller's, none outside the price band, and no
-- more of one seller in a list than the cap. The output gate stops a run that breaks them before publish; this is
-- the data team's check after it, and it fails when a rule tightened since (serve applies the new one at request
-- time: docs/data-team.md, The marketplace's rules). A row per breach.
-- The latest run's id is looked up first and written into the query, so that only its partition of each recs
-- table is read (a join to it read every run's partitions kept: 9.6 s at 100k users with 40 runs kept); with no
-- published run, no partition is read and there is nothing to breach.
{% set latest_run = none %}
{% if execute %}
    {% set found = run_query("select run_id from " ~ ref('run_history_runs')
                             ~ " where status = 'published' order by recorded_at desc limit 1") %}
    {% if found.rows | length > 0 %}{% set latest_run = found.rows[0][0] %}{% endif %}
{% endif %}
with rules as (
    select
        max(case when rule = 'max_per_seller' then cast(value as double) end) as max_per_seller,
        max(case when rule = 'min_listing_amount' then cast(value as double) end) as min_amount,
        max(case when rule = 'max_listing_amount' then cast(value as double) end) as max_amount
    from {{ ref('list_rules') }}
),

suspended as (
    select cast(value as int) as seller_uid from {{ ref('list_rules') }} where rule = 'suspended_seller'
),

listed as (
    select lists.run_id, lists.uid, lists.listing_id, lists.listing_amount, details.seller_uid
    from {{ source('recs', 'recommendations') }} as lists
    left join (
        select listing_id, seller_uid from {{ source('recs', 'listing_details') }}
        where run_id = '{{ latest_run }}'
    ) as details on details.listing_id = lists.listing_id
    where lists.run_id = '{{ latest_run }}'
)

select run_id, uid, listing_id, 'the user''s own listing' as breach
from listed where seller_uid = uid
union all
select run_id, uid, listing_id, 'a suspended seller''s listing'
from listed where seller_uid in (select seller_uid from suspended)
union all
select run_id, uid, listing_id, 'outside the price band'
from listed cross join rules
where listing_amount < coalesce(rules.min_amount, 0) or listing_amount > coalesce(rules.max_amount, 1e18)
union all
select listed.run_id, listed.uid, cast(null as int), concat('more than the cap of seller ', listed.seller_uid)
from listed cross join rules
where listed.seller_uid is not null and rules.max_per_seller > 0
group by listed.run_id, listed.uid, listed.seller_uid, rules.max_per_seller
having count(*) > rules.max_per_seller
