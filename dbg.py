import asyncio, uuid, tempfile
from pathlib import Path
from activities.providers.offline import OfflineProvider
from kit.storage import LocalStore
from models.life import LifeJob
from tests.conftest import running_workers, start_dev_server
from tests.test_life import start_life
from tests.test_life_pictures import sky_world
from workers.registry import QUEUES

async def main():
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = LocalStore(Path(tmp))
            world = f"world-{uuid.uuid4().hex[:8]}"
            await sky_world(store, world)
            job = LifeJob(world_id=world, ticks=1, active_share=1, reflect_every=0)
            async with running_workers(env.client, OfflineProvider(), store, queues=list(QUEUES)):
                handle = await start_life(env, job)
                try:
                    print(await asyncio.wait_for(handle.result(), 40))
                except Exception as e:
                    print("ERR", repr(e)[:300])
                    d = await handle.describe()
                    print("status", d.status, "pending", [(a.activity_type.name, a.attempt, a.last_failure.message[:300] if a.HasField("last_failure") else "") for a in d.raw_description.pending_activities])
                    async for ev in handle.fetch_history_events():
                        last = ev
                        if ev.HasField("workflow_task_failed_event_attributes"):
                            print("WFT failed:", ev.workflow_task_failed_event_attributes.failure.message[:500])
                    print("last event", last.event_type)
    finally:
        await env.shutdown()
asyncio.run(main())
